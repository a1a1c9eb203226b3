//! PRIVATE FALLBACK, to be unified with `crate::functions` by the lead: the natural string order
//! `sort_by_label`/`sort_by_label_desc` compare label values with (Prometheus uses
//! `facette/natsort`), which the function library does not offer.
//!
//! Owns only that comparison; sorting series by it is `call`'s.

/// Prometheus' natural order for `sort_by_label` (facette/natsort): digit runs compare as
/// integers, other runs as strings. True when `a` sorts before `b`.
pub(crate) fn natural_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push(&s[start..i]);
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (i, x) in ca.iter().enumerate() {
        let Some(y) = cb.get(i) else { return false };
        let equal = match (x.parse::<i64>(), y.parse::<i64>()) {
            (Ok(xi), Ok(yi)) if xi != yi => return xi < yi,
            (Ok(_), Ok(_)) => true,
            _ if x != y => return x < y,
            _ => true,
        };
        if equal {
            if i == ca.len() - 1 {
                return true;
            }
            if i == cb.len() - 1 {
                return false;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a10", "a2"));
        assert!(natural_less("abc", "abd"));
        assert!(natural_less("node-1", "node-10"));
    }
}
