//! Counted nouns in what pcbulk says to a person: "1 row", "2 rows", never "1 rows". A leaf: words only.

/// `count` and `noun`, the noun in the plural unless `count` is 1. Every noun pcbulk counts takes an `s` ("row",
/// "request", "customer", "warning", "listing request").
pub fn counted(count: u64, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(counted(1, "row"), "1 row");
        assert_eq!(counted(0, "row"), "0 rows");
        assert_eq!(counted(2, "listing request"), "2 listing requests");
    }
}
