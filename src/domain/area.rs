//! The area tree's one rule: an area's materialized path (`/<root id>/…/<its id>/`) starts
//! with the path of every area above it, so a subtree is the paths with its root's prefix.

/// Whether the area with `path` lies in the subtree of the area with path `root`.
pub fn in_subtree(path: &str, root: &str) -> bool {
    path.starts_with(root)
}

/// A `LIKE` pattern matching the paths of the subtree of the area with path `root`.
pub fn subtree_pattern(root: &str) -> String {
    // Paths hold only UUIDs and slashes: nothing to escape.
    format!("{root}%")
}

/// The paths of the areas above the area with `path` (not its own), root first.
pub fn ancestor_paths(path: &str) -> Vec<String> {
    let ends: Vec<usize> = path
        .char_indices()
        .filter(|(i, c)| *c == '/' && *i > 0 && *i + 1 < path.len())
        .map(|(i, _)| i)
        .collect();
    ends.into_iter().map(|i| path[..=i].to_owned()).collect()
}

/// The id (as written in the path) of the area right above the area with `path`, if any.
pub fn parent_in(path: &str) -> Option<&str> {
    let mut ids = path.trim_matches('/').rsplit('/');
    ids.next();
    ids.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtree_is_the_paths_under_its_root() {
        assert!(in_subtree("/a/b/c/", "/a/b/"));
        assert!(in_subtree("/a/b/", "/a/b/"));
        assert!(!in_subtree("/a/bb/", "/a/b/"));
        assert!(!in_subtree("/a/", "/a/b/"));
        assert_eq!(subtree_pattern("/a/b/"), "/a/b/%");
        assert_eq!(ancestor_paths("/a/b/c/"), vec!["/a/", "/a/b/"]);
        assert!(ancestor_paths("/a/").is_empty());
        assert_eq!(parent_in("/a/b/c/"), Some("b"));
        assert_eq!(parent_in("/a/"), None);
    }
}
