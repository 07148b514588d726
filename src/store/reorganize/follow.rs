//! What follows the map: the villages of the retired communes (they follow a commune that
//! went whole, or wait for a person) and the assignments to retired areas, worked out
//! without the database from the plan (`plan::Plan`).

use super::plan::{CurrentMap, Plan};
use super::report::{AssignmentToDecide, VillageRenamed};
use super::Options;
use crate::domain::{AreaId, UserId};
use crate::store::areas::{self, Area, AreaRef, NewArea};
use std::collections::{HashMap, HashSet};

/// Where the villages of the retired communes go.
#[derive(Default)]
pub struct VillagePlan {
    pub moves: Vec<crate::store::map::Move>,
    /// Villages that wait for a person, with the new communes they may go to.
    pub candidates: Vec<(AreaId, AreaId)>,
    pub renamed: Vec<VillageRenamed>,
    pub moved: HashSet<AreaId>,
    pub pending: HashSet<AreaId>,
}

/// Each village follows its old commune where that went whole (a commune the table does
/// not name goes where its district went whole), or waits, with the areas its commune (or
/// district) went to as candidates. Where two villages of one name meet, the one of the
/// commune that gave the new commune its code keeps the name, then the one of the lowest old
/// code: the same outcome on every run.
pub fn place_villages(
    plan: &Plan<'_>,
    map: &CurrentMap<'_>,
    villages: &[Area],
    o: &Options,
) -> VillagePlan {
    let successor: HashMap<AreaId, AreaId> = plan.successor.iter().copied().collect();
    let new_by_id: HashMap<AreaId, &NewArea> = plan.fresh.iter().map(|u| (u.id, u)).collect();
    let mut placed: Vec<(&Area, &Area, Option<AreaId>)> = villages
        .iter()
        .filter_map(|v| {
            let commune = *map.by_id.get(&v.parent_id?)?;
            let district = commune.parent_id;
            let target = successor.get(&commune.id).copied().or_else(|| {
                (!plan.went_to.contains_key(&commune.id))
                    .then(|| district.and_then(|d| successor.get(&d).copied()))
                    .flatten()
            });
            Some((v, commune, target))
        })
        .collect();
    placed.sort_by_key(|(v, commune, target)| {
        let gave_code =
            target.and_then(|t| new_by_id.get(&t)).map(|t| &t.code) == Some(&commune.code);
        (!gave_code, commune.code.clone(), v.name.clone(), v.id)
    });
    let mut taken: HashSet<(AreaId, String)> = HashSet::new();
    let mut out = VillagePlan::default();
    for (v, commune, target) in placed {
        match target {
            Some(to) => {
                let to = new_by_id[&to];
                let mut name = v.name.clone();
                if taken.contains(&(to.id, name.clone())) {
                    name = format!("{} ({})", v.name, areas::bare_name(&commune.name));
                    let mut n = 2;
                    while taken.contains(&(to.id, name.clone())) {
                        name = format!("{} ({}) {n}", v.name, areas::bare_name(&commune.name));
                        n += 1;
                    }
                    out.renamed.push(VillageRenamed {
                        village_id: v.id,
                        from: v.name.clone(),
                        to: name.clone(),
                        commune: super::plan::new_ref(to),
                    });
                }
                taken.insert((to.id, name.clone()));
                out.moves.push(crate::store::map::Move {
                    village: v.clone(),
                    to: to.id,
                    to_path: to.path.clone(),
                    name,
                    effective: o.effective,
                });
                out.moved.insert(v.id);
            }
            None => {
                let from_commune = plan.went_to.get(&commune.id);
                let from_district = commune.parent_id.and_then(|d| plan.went_to.get(&d));
                for to in from_commune
                    .or(from_district)
                    .into_iter()
                    .flat_map(|m| m.keys())
                {
                    out.candidates.push((v.id, *to));
                }
                out.pending.insert(v.id);
            }
        }
    }
    out
}

/// A user's assignment to an area.
pub struct Assignment {
    pub user: UserId,
    pub area: AreaId,
    pub username: String,
}

/// What becomes of the assignments to retired areas.
#[derive(Default)]
pub struct Following {
    /// Assignments to remove: (user, retired area).
    pub removed: Vec<(UserId, AreaId)>,
    /// Assignments to add: (user, successor), each once.
    pub added: Vec<(UserId, AreaId)>,
    pub followed: usize,
    pub to_decide: Vec<AssignmentToDecide>,
}

/// An assignment to an area that went whole moves to its successor (once, should two of the
/// user's areas have gone into one); the others wait for an admin.
pub fn follow_assignments(
    plan: &Plan<'_>,
    map: &CurrentMap<'_>,
    assigned: &[Assignment],
) -> Following {
    let successor: HashMap<AreaId, AreaId> = plan.successor.iter().copied().collect();
    let mut has: HashSet<(UserId, AreaId)> = assigned.iter().map(|a| (a.user, a.area)).collect();
    let mut out = Following::default();
    for a in assigned
        .iter()
        .filter(|a| plan.retired_ids.contains(&a.area))
    {
        match successor.get(&a.area) {
            Some(to) => {
                out.removed.push((a.user, a.area));
                if has.insert((a.user, *to)) {
                    out.added.push((a.user, *to));
                }
                out.followed += 1;
            }
            None => out.to_decide.push(AssignmentToDecide {
                user_id: a.user,
                username: a.username.clone(),
                area: AreaRef::of(map.by_id[&a.area]),
                successors: plan.successor_refs(&a.area),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::plan::fixtures::*;
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn villages_follow_a_commune_that_went_whole_and_meet_by_name() {
        let (rows, areas) = binh_gia();
        let map = CurrentMap::new(&areas);
        let plan = Plan::make(&rows, &map, &options()).unwrap();
        // Two old communes that went whole into one new commune, a village "Nà Pàn" in each.
        let whole: Vec<&Area> = areas
            .iter()
            .filter(|u| plan.successor.iter().any(|(f, _)| *f == u.id) && u.level == "commune")
            .collect();
        let by_target = |a: &Area| plan.successor.iter().find(|(f, _)| *f == a.id).unwrap().1;
        let (a, b) = whole
            .iter()
            .flat_map(|a| whole.iter().map(move |b| (*a, *b)))
            .find(|(a, b)| a.id != b.id && by_target(a) == by_target(b))
            .expect("two communes merged whole");
        let villages = vec![
            area(AreaId::random(), "village", "", "Nà Pàn", Some(a)),
            area(AreaId::random(), "village", "", "Nà Pàn", Some(b)),
        ];
        let out = place_villages(&plan, &map, &villages, &options());
        assert_eq!(out.moves.len(), 2);
        assert!(out.pending.is_empty() && out.candidates.is_empty());
        let names: BTreeSet<&str> = out.moves.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names.len(),
            2,
            "one keeps the name, the other is told apart"
        );
        assert!(names.contains("Nà Pàn"));
        assert_eq!(out.renamed.len(), 1);
    }

    #[test]
    fn an_assignment_follows_a_unit_that_went_whole_once() {
        let (rows, areas) = binh_gia();
        let map = CurrentMap::new(&areas);
        let plan = Plan::make(&rows, &map, &options()).unwrap();
        let district = areas.iter().find(|u| u.level == "district").unwrap();
        let province = areas.iter().find(|u| u.level == "province").unwrap();
        let user = UserId(uuid::Uuid::new_v4());
        let assigned = [
            Assignment {
                user,
                area: province.id,
                username: "huyen".into(),
            },
            Assignment {
                user,
                area: district.id,
                username: "huyen".into(),
            },
        ];
        let f = follow_assignments(&plan, &map, &assigned);
        assert_eq!(f.followed, 1);
        assert_eq!(f.removed, [(user, province.id)]);
        assert_eq!(f.added.len(), 1);
        assert_eq!(f.to_decide.len(), 1);
        assert_eq!(f.to_decide[0].area.id, district.id);
        assert!(!f.to_decide[0].successors.is_empty());
    }
}
