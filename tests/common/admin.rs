//! The first admin, created straight in the database as `gocua user add` does. Shared by the
//! tests and, through `#[path]`, by the benchmarks.

/// Creates the user `admin` (full name "Admin") with `password`.
pub async fn create_admin(pool: &gocua::db::Pool, password: &'static str) {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let hash = gocua::auth::hash_password(password).unwrap();
        let mut pc = pool.get().unwrap();
        let admin = gocua::store::users::Account::new(
            "admin",
            "Admin",
            &hash,
            gocua::auth::Role::Admin,
            &[],
        );
        gocua::store::users::create(&mut pc.conn(), &admin).unwrap();
    })
    .await
    .unwrap();
}
