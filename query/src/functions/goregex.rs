//! Go (RE2) regular-expression semantics on top of the `regex` crate, for `label_replace`.
//!
//! Owns: rewriting the RE2 constructs whose meaning differs in Rust's syntax (ASCII-only `\d`,
//! `\s`, `\w`, `\b`; `\Q…\E`; octal escapes; `[` `&` `~` as literals inside classes; a `{` that
//! starts no valid repetition is a literal), and Go's `Regexp.Expand` template rules. Does not own
//! label matchers (the index crate compiles those).

use std::sync::LazyLock;

use regex::{Captures, Regex};

const DIGIT: &str = "0-9";
const SPACE: &str = r"\t\n\f\r ";
const WORD: &str = "0-9A-Za-z_";

/// Rewrites a Go RE2 pattern into Rust `regex` syntax with the same meaning.
pub(crate) fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let e = chars[i + 1];
            i += 2;
            match (e, in_class) {
                ('d', false) => out.push_str(&format!("[{DIGIT}]")),
                ('D', _) => out.push_str(&format!("[^{DIGIT}]")),
                ('s', false) => out.push_str(&format!("[{SPACE}]")),
                ('S', _) => out.push_str(&format!("[^{SPACE}]")),
                ('w', false) => out.push_str(&format!("[{WORD}]")),
                ('W', _) => out.push_str(&format!("[^{WORD}]")),
                ('d', true) => out.push_str(DIGIT),
                ('s', true) => out.push_str(SPACE),
                ('w', true) => out.push_str(WORD),
                ('b', false) => out.push_str(r"(?-u:\b)"),
                ('B', false) => out.push_str(r"(?-u:\B)"),
                ('Q', false) => {
                    // Literal text up to \E (or the end).
                    let mut literal = String::new();
                    while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                        literal.push(chars[i]);
                        i += 1;
                    }
                    i = (i + 2).min(chars.len());
                    out.push_str(&regex::escape(&literal));
                }
                ('0'..='7', _)
                    if e == '0' || chars.get(i).is_some_and(|d| ('0'..='7').contains(d)) =>
                {
                    // Octal: \0, \0N, \0NN, or two/three digits starting 1–7.
                    let mut value = e.to_digit(8).expect("octal digit");
                    let mut taken = 0;
                    while taken < 2 && i < chars.len() && ('0'..='7').contains(&chars[i]) {
                        value = value * 8 + chars[i].to_digit(8).expect("octal digit");
                        i += 1;
                        taken += 1;
                    }
                    out.push_str(&format!(r"\x{{{value:x}}}"));
                }
                ('p' | 'P' | 'x', _) if chars.get(i) == Some(&'{') => {
                    // `\p{Greek}`, `\x{263a}`: same syntax, braces included.
                    out.push('\\');
                    out.push(e);
                    while i < chars.len() {
                        out.push(chars[i]);
                        i += 1;
                        if chars[i - 1] == '}' {
                            break;
                        }
                    }
                }
                _ => {
                    out.push('\\');
                    out.push(e);
                }
            }
            continue;
        }
        i += 1;
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                '[' if chars.get(i) == Some(&':') => {
                    // A POSIX class like [:alpha:], same in both syntaxes.
                    out.push('[');
                    while i < chars.len() {
                        out.push(chars[i]);
                        i += 1;
                        if chars[i - 1] == ']' {
                            break;
                        }
                    }
                }
                // Literals in RE2 that are nesting or set operators in Rust classes.
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A leading ']' is a literal member.
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
            }
            '{' => match repetition_len(&chars[i..]) {
                Some(n) => {
                    out.push('{');
                    out.extend(&chars[i..i + n]);
                    i += n;
                }
                None => out.push_str(r"\{"),
            },
            '}' => out.push_str(r"\}"),
            _ => out.push(c),
        }
    }
    out
}

/// Length of `n}`, `n,}` or `n,m}` (after a `{`), if `chars` starts with one.
fn repetition_len(chars: &[char]) -> Option<usize> {
    let digits = |from: usize| {
        chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let min = digits(0);
    if min == 0 {
        return None;
    }
    let mut i = min;
    if chars.get(i) == Some(&',') {
        i += 1;
        i += digits(i);
    }
    (chars.get(i) == Some(&'}')).then_some(i + 1)
}

/// Compiles `pattern` as Prometheus does for `label_replace`: `^(?s:pattern)$`.
pub(crate) fn compile_anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?s:{})$", translate(pattern)))
}

/// Characters of a template reference name: Go's `unicode.IsLetter`, `unicode.IsDigit`, `_`.
static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{Nd}_]+").expect("valid pattern"));

/// A reference after `$`: the name, its group number if it is a plain number, and the rest.
fn reference(s: &str) -> Option<(&str, Option<usize>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let name = NAME.find(body)?.as_str();
    let mut rest = &body[name.len()..];
    if brace {
        rest = rest.strip_prefix('}')?;
    }
    // A number only if all ASCII digits, below 1e8, and without a leading zero ("01" is a name).
    let numeric = name.bytes().all(|b| b.is_ascii_digit())
        && name.len() <= 8
        && !(name.len() > 1 && name.starts_with('0'));
    let number = if numeric { name.parse().ok() } else { None };
    Some((name, number, rest))
}

/// Go's `Regexp.Expand`: `$name`/`${name}` insert a group's text (nothing for a group that did
/// not take part or does not exist), `$$` is a literal `$`, and a `$` starting no valid reference
/// is kept. The name is the longest run of letters, digits and `_`, so `$1x` means the group
/// named `1x`; write `${1}x` for group 1 followed by `x`.
pub(crate) fn expand(template: &str, re: &Regex, caps: &Captures<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, number, after)) = reference(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = match number {
            Some(n) => caps.get(n),
            None => re
                .capture_names()
                .enumerate()
                .filter(|(_, n)| *n == Some(name))
                .find_map(|(i, _)| caps.get(i)),
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        compile_anchored(pattern).unwrap().is_match(text)
    }

    #[test]
    fn perl_classes_are_ascii_only() {
        assert!(matches(r"\d+", "123"));
        assert!(!matches(r"\d", "٣"), "Arabic-Indic three is not \\d in RE2");
        assert!(matches(r"\D", "٣"));
        assert!(!matches(r"\w", "é"));
        assert!(matches(r"[\w-]+", "a-b_1"));
        assert!(!matches(r"\s", "\u{a0}"));
        assert!(matches(r"a\b.*", "a b"));
    }

    #[test]
    fn re2_literals_that_rust_treats_specially() {
        assert!(matches(r"\Qa.b\E", "a.b"));
        assert!(!matches(r"\Qa.b\E", "axb"));
        assert!(matches(r"[a&&b]", "&"));
        assert!(matches(r"[[]", "["));
        assert!(matches(r"[]a]", "]"));
        assert!(matches(r"a{", "a{"));
        assert!(matches(r"a{,2}", "a{,2}"));
        assert!(matches(r"a{2}", "aa"));
        assert!(matches(r"x}", "x}"));
        assert!(matches(r"\101", "A"));
        assert!(matches(r"[[:alpha:]]+", "abc"));
        assert!(matches(r"\p{Greek}+\x{263a}", "αβ☺"));
        assert!(matches(r"[\p{Greek}\d]+", "α1"));
    }

    #[test]
    fn expand_follows_go_rules() {
        let re = compile_anchored("(?P<word>a)(b)?(c)").unwrap();
        let caps = re.captures("ac").unwrap();
        let e = |t: &str| expand(t, &re, &caps);
        assert_eq!(e("$1"), "a");
        assert_eq!(e("$1x"), "", "$1x names group `1x`");
        assert_eq!(e("${1}x"), "ax");
        assert_eq!(e("$2"), "", "group 2 did not participate");
        assert_eq!(e("$9"), "", "no such group");
        assert_eq!(e("$word-$3"), "a-c");
        assert_eq!(e("${word}s"), "as");
        assert_eq!(e("$$1"), "$1");
        assert_eq!(e("cost: $"), "cost: $");
        assert_eq!(e("${1"), "${1", "unclosed brace keeps the $");
        assert_eq!(e("$01"), "", "leading zero makes it a name");
        assert_eq!(e("$!"), "$!");
    }
}
