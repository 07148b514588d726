fn main() -> std::process::ExitCode {
    gocua::cli::main()
}
