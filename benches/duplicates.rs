//! `gocua duplicates scan` over a large register (docs/BENCHMARKS.md): households, members
//! and phones written straight into the tables (as a database written before the duplicate
//! check was), then the scan, timed as a user runs it.
//!
//! cargo bench --locked --bench duplicates -- both --households 500000

mod support;

use support::{admin_with_binh_gia, get, start};
use uuid::Uuid;

/// A small deterministic generator (xorshift), so that both databases get the same register.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const MEMBERS_PER_HOUSEHOLD: usize = 3;

/// One household in a hundred is registered twice (the same head name and address in the
/// same village): the pairs the scan must find.
const TWICE_EVERY: usize = 100;

/// Writes the households (each village a block of them), their members and phones.
fn seed(pool: &gocua::db::Pool, villages: &[String], user: &str, households: usize) -> usize {
    let mut rng = Rng(11);
    let now = "2020-07-25T00:00:00.000000Z";
    let per_village = households.div_ceil(villages.len());
    let mut homes = Vec::with_capacity(households);
    let mut people = Vec::with_capacity(households * MEMBERS_PER_HOUSEHOLD);
    let mut twice = 0;
    for i in 0..households {
        let h = Uuid::new_v4();
        let v = &villages[i / per_village];
        // The copy of the household before it, when it is in the same village.
        let n = match i % TWICE_EVERY == 1 && (i - 1) / per_village == i / per_village {
            true => {
                twice += 1;
                i - 1
            }
            false => i,
        };
        let phone = format!("09{:08}", rng.below(100_000_000));
        homes.push(format!(
            "('{h}','{v}','Số {n}, thôn {}','Hoàng Văn Mạnh {n}','{phone}','',1,'{{}}','','{user}','{now}','{now}')",
            n % 97
        ));
        for m in 0..MEMBERS_PER_HOUSEHOLD {
            let phone = match rng.below(3) {
                0 => format!("'09{:08}'", rng.below(100_000_000)),
                _ => "NULL".to_owned(),
            };
            people.push(format!(
                "('{}','{h}','Nông Thị Hoa {i}-{m}',{},{phone},'unknown','none','',1,'{{}}','','{now}','{now}')",
                Uuid::new_v4(),
                1950 + rng.below(60)
            ));
        }
    }
    let tables: [(&str, &str, &Vec<String>); 2] = [
        ("households", "id, area_id, address, head_name, phone, notes, version, field_meta, search_key, created_by, created_at, updated_at", &homes),
        ("members", "id, household_id, full_name, birth_year, phone, smartphone, priority, notes, version, field_meta, search_key, created_at, updated_at", &people),
    ];
    support::insert_straight(pool, &tables);
    println!(
        "seeded {} households and {} members in {} villages, {twice} households registered twice",
        homes.len(),
        people.len(),
        villages.len()
    );
    twice
}

async fn bench(name: &str, url: &str) {
    let households = support::arg("--households", 500_000) as usize;
    let twice = {
        let (server, pool) = start(url, 4);
        let s = &server;
        let c = reqwest::Client::new();
        let admin = admin_with_binh_gia(&c, s, &pool).await;
        let me = get(&c, s, "/api/v1/me", &admin).await;
        let (_, _, villages) =
            support::district_villages(&c, s, &admin, support::arg("--villages-per-commune", 5))
                .await;
        seed(&pool, &villages, me["id"].as_str().unwrap(), households)
    };
    let (secs, peak, out) = support::run(url, &["duplicates", "scan"]);
    // "Read N households in S s: P new pairs of possible duplicates."
    let found: usize = out
        .lines()
        .find_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    println!("{}", out.trim());
    println!(
        "| {name} | {households} | {secs:.1} | {:.0} | {peak:.0} | {found} (of {twice} registered twice) |",
        households as f64 / secs
    );
    assert!(
        found >= twice,
        "the scan found {found} pairs of {twice} households registered twice"
    );
}

fn main() {
    println!("| database | households | scan s | households/s | peak MiB | pairs found |");
    println!("|---|---|---|---|---|---|");
    support::run_on_backends("gocua_bench_duplicates", |name, url| async move {
        bench(name, &url).await
    });
}
