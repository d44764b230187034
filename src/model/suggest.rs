//! "Did you mean": the candidate nearest to a misspelt name, if one is near enough.

/// The candidate most like `typed`, if one is a likely typo: at most one edit
/// (insertion, deletion, substitution or swap of neighbours) per three characters typed,
/// and at least one.
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let most = (typed.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != typed)
        .map(|candidate| (strsim::osa_distance(typed, candidate), candidate))
        .filter(|(distance, _)| *distance <= most)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// ", did you mean `X`?" after a message about `typed`, or nothing.
pub fn hint<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    nearest(typed, candidates).map(|near| format!(", did you mean `{near}`?")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_the_nearest_only_when_near() {
        assert_eq!(nearest("mtuu", ["mac", "mtu", "up"]), Some("mtu"));
        assert_eq!(nearest("GREN", ["RED", "GREEN", "BLUE"]), Some("GREEN"));
        assert_eq!(nearest("pign", ["ping", "tcp"]), Some("ping"));
        assert_eq!(nearest("secret", ["ca", "cert", "key"]), None);
        assert_eq!(hint("nodez", ["name", "nodes", "host"]), ", did you mean `nodes`?");
    }
}
