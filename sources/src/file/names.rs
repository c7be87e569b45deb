//! Partition file names: the glob that selects them and the natural order
//! that numbers them (`part-2` before `part-10`).

use std::cmp::Ordering;

/// A compiled file-name pattern.
///
/// Syntax: `*` matches any run of characters, `?` one character, `[abc]`,
/// `[a-z]` and `[!abc]` one character of (or not of) a set, `{jsonl,json}`
/// one of several alternatives (not nested). Everything else matches
/// itself, case-sensitively. A pattern matches a whole file name, never a
/// path: it must not contain `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Glob {
    text: String,
    /// The pattern with its `{…}` groups expanded: a name matches when it
    /// matches any of them.
    alternatives: Vec<Vec<Token>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Char(char),
    AnyChar,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    /// Compiles `text`, or says why it is not a valid pattern.
    pub(crate) fn new(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| format!("invalid partition glob \"{text}\": {why}");
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.contains('/') {
            return Err(invalid("it matches file names and must not contain '/'"));
        }
        let mut alternatives = Vec::new();
        for expanded in expand_braces(text).map_err(|why| invalid(&why))? {
            alternatives.push(tokens(&expanded).map_err(|why| invalid(&why))?);
        }
        Ok(Glob {
            text: text.to_owned(),
            alternatives,
        })
    }

    /// The pattern as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `name` (a file name, not a path) matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        self.alternatives
            .iter()
            .any(|tokens| matches(tokens, &name))
    }
}

/// Expands `{a,b}` groups into every combination, left to right.
fn expand_braces(text: &str) -> Result<Vec<String>, String> {
    let Some(open) = text.find('{') else {
        if text.contains('}') {
            return Err("'}' without '{'".to_owned());
        }
        return Ok(vec![text.to_owned()]);
    };
    let (head, rest) = text.split_at(open);
    if head.contains('}') {
        return Err("'}' without '{'".to_owned());
    }
    let rest = &rest[1..];
    let close = rest.find('}').ok_or("'{' without '}'")?;
    let (group, tail) = (&rest[..close], &rest[close + 1..]);
    if group.contains('{') {
        return Err("'{…}' groups cannot be nested".to_owned());
    }
    let tails = expand_braces(tail)?;
    let mut out = Vec::new();
    for choice in group.split(',') {
        for tail in &tails {
            out.push(format!("{head}{choice}{tail}"));
        }
    }
    Ok(out)
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyChar,
            '[' => {
                let negated = chars.next_if(|&c| c == '!').is_some();
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let c = chars.next().ok_or("'[' without ']'")?;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        match chars.next() {
                            Some(']') => {
                                // `[a-]`: a literal `-` at the end.
                                ranges.push((c, c));
                                ranges.push(('-', '-'));
                                break;
                            }
                            Some(end) if end >= c => ranges.push((c, end)),
                            Some(end) => return Err(format!("empty range '{c}-{end}'")),
                            None => return Err("'[' without ']'".to_owned()),
                        }
                    } else {
                        ranges.push((c, c));
                    }
                }
                Token::Class { negated, ranges }
            }
            c => Token::Char(c),
        });
    }
    Ok(out)
}

/// Wildcard matching with one backtracking point (the last `*`), linear in
/// practice.
fn matches(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let c = name[n];
        match tokens.get(t) {
            Some(Token::AnyRun) => {
                star = Some((t, n));
                t += 1;
                continue;
            }
            Some(Token::Char(want)) if *want == c => {}
            Some(Token::AnyChar) => {}
            Some(Token::Class { negated, ranges }) if in_class(ranges, c) != *negated => {}
            _ => match star {
                // Let the last `*` take one more character and retry.
                Some((st, sn)) => {
                    star = Some((st, sn + 1));
                    t = st + 1;
                    n = sn + 1;
                    continue;
                }
                None => return false,
            },
        }
        t += 1;
        n += 1;
    }
    tokens[t..].iter().all(|token| *token == Token::AnyRun)
}

fn in_class(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

/// Natural order of file names: runs of ASCII digits compare as numbers
/// (`part-2` < `part-10`, `p-007` = `p-7` numerically), everything else
/// byte by byte; names equal that way compare by their bytes, so the order
/// is total.
pub(crate) fn natural_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        if x.is_ascii_digit() && y.is_ascii_digit() {
            let (ei, ej) = (digits_end(a, i), digits_end(b, j));
            let (na, nb) = (strip_zeros(&a[i..ei]), strip_zeros(&b[j..ej]));
            let by_number = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if by_number != Ordering::Equal {
                return by_number;
            }
            (i, j) = (ei, ej);
        } else {
            if x != y {
                return x.cmp(&y);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j)).then_with(|| a.cmp(b))
}

fn digits_end(s: &[u8], from: usize) -> usize {
    from + s[from..].iter().take_while(|b| b.is_ascii_digit()).count()
}

fn strip_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        let g = Glob::new("*.{jsonl,json,ndjson}").unwrap();
        for name in ["a.jsonl", "part-1.json", ".ndjson", "x.y.ndjson"] {
            assert!(g.matches(name), "{name}");
        }
        for name in ["a.jsonl.gz", "a.csv", "jsonl", "a.JSONL"] {
            assert!(!g.matches(name), "{name}");
        }
        let g = Glob::new("part-[0-9]?.c*v").unwrap();
        assert!(g.matches("part-12.csv") && g.matches("part-3x.cv"));
        assert!(!g.matches("part-a1.csv") && !g.matches("part-1.csv"));
        let g = Glob::new("[!.]*").unwrap();
        assert!(g.matches("a") && !g.matches(".a"));
        let g = Glob::new("[]a-]").unwrap();
        assert!(g.matches("]") && g.matches("a") && g.matches("-") && !g.matches("b"));
        assert!(Glob::new("*a*b*c").unwrap().matches("xxaxxbxbxxc"));
        assert!(!Glob::new("*a*b*c").unwrap().matches("xxaxxbxbxx"));
        assert!(Glob::new("*").unwrap().matches(""));
        assert!(Glob::new("ü?").unwrap().matches("üé"));
    }

    #[test]
    fn bad_globs_say_why() {
        for (text, why) in [
            ("", "it is empty"),
            ("a/*.csv", "must not contain '/'"),
            ("*.{csv", "'{' without '}'"),
            ("*.csv}", "'}' without '{'"),
            ("{a,{b}}", "cannot be nested"),
            ("[ab", "'[' without ']'"),
            ("[z-a]", "empty range"),
        ] {
            let err = Glob::new(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.starts_with("invalid partition glob"), "{err}");
        }
    }

    #[test]
    fn natural_order() {
        let mut names = vec![
            "part-10.jsonl",
            "part-2.jsonl",
            "part-1.jsonl",
            "part-02.jsonl",
            "part-00010.jsonl",
            "a",
            "part-.jsonl",
            "part-1a.jsonl",
            "part-9999999999999999999999.jsonl",
        ];
        names.sort_by(|a, b| natural_cmp(a.as_bytes(), b.as_bytes()));
        assert_eq!(
            names,
            [
                "a",
                "part-.jsonl",
                "part-1.jsonl",
                "part-1a.jsonl",
                "part-02.jsonl",
                "part-2.jsonl",
                "part-00010.jsonl",
                "part-10.jsonl",
                "part-9999999999999999999999.jsonl",
            ]
        );
        // Zero-padded names keep their plain order.
        let padded: Vec<String> = (0..120).map(|p| format!("part-{p:05}.csv")).collect();
        let mut sorted = padded.clone();
        sorted.reverse();
        sorted.sort_by(|a, b| natural_cmp(a.as_bytes(), b.as_bytes()));
        assert_eq!(sorted, padded);
    }
}
