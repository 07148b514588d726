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
    }
}
