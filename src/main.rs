/// mimalloc: the writer thread frees what the HTTP workers allocated (parsed batches), which
/// glibc's allocator does slowly, under its arenas' locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gocua::cli::main()
}
