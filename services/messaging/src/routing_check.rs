//! No catch-all in event routing: a `_ =>` or a binding arm (`other =>`) in a `match` over events would
//! let a new event type compile unrouted, and silently do whatever that arm does. This test reads every
//! service's sources: each `events.rs` (the routing) may have no catch-all arm in any `match`, and no
//! `match` anywhere with an `EventType::` or `Event::` arm may have one. Tests are not read.

use std::path::{Path, PathBuf};

/// The code of a file: comments and the text of string and character literals blanked (so a `_ =>` in
/// them is not read as code), and nothing from the first `#[cfg(test)]` on.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if rest.starts_with(&['/', '/']) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if rest.starts_with(&['/', '*']) {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if rest[0] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i += 1;
        } else if rest[0] == '\'' && (rest.get(1) == Some(&'\\') || rest.get(2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\''); a lifetime ('a) is kept.
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            out.push_str("' '");
            i += 1;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    out
}

fn ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The index just past the bracket that closes the one opened at `open`.
fn closing(code: &[char], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, c) in code.iter().enumerate().skip(open) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// The bodies (between the braces) of every `match` in `code`.
fn match_bodies(code: &[char]) -> Vec<&[char]> {
    let mut bodies = Vec::new();
    let mut i = 0;
    while i + 5 < code.len() {
        let word = code[i..i + 5].iter().collect::<String>() == "match";
        let alone = (i == 0 || !ident(code[i - 1])) && code[i + 5].is_whitespace();
        if !(word && alone) {
            i += 1;
            continue;
        }
        let mut at = i + 5;
        let mut depth = 0usize;
        while at < code.len() && !(code[at] == '{' && depth == 0) {
            match code[at] {
                '(' | '[' => depth += 1,
                ')' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
            at += 1;
        }
        if at < code.len() {
            let end = closing(code, at);
            bodies.push(&code[at + 1..end.saturating_sub(1)]);
        }
        i += 5;
    }
    bodies
}

/// The patterns of a `match` body's arms (with their guards).
fn arm_patterns(body: &[char]) -> Vec<String> {
    let mut patterns = Vec::new();
    let mut i = 0;
    let mut start = 0;
    while i < body.len() {
        match body[i] {
            '(' | '[' | '{' => i = closing(body, i),
            '=' if body.get(i + 1) == Some(&'>') => {
                patterns.push(body[start..i].iter().collect::<String>());
                i = arm_end(body, i + 2);
                start = i;
            }
            _ => i += 1,
        }
    }
    patterns
}

/// Where the arm whose expression starts at `from` ends: after its block, or after the comma that ends it.
fn arm_end(body: &[char], from: usize) -> usize {
    let mut i = from;
    while i < body.len() {
        match body[i] {
            '(' | '[' => i = closing(body, i),
            '{' => {
                i = closing(body, i);
                let next: String = body[i..]
                    .iter()
                    .collect::<String>()
                    .trim_start()
                    .to_string();
                if next.starts_with("else") || next.starts_with('.') || next.starts_with('?') {
                    continue;
                }
                let comma = body[i..].iter().position(|c| !c.is_whitespace());
                return match comma {
                    Some(n) if body[i + n] == ',' => i + n + 1,
                    _ => i,
                };
            }
            ',' => return i + 1,
            _ => i += 1,
        }
    }
    body.len()
}

/// Whether an arm's pattern takes whatever comes: `_`, a lone binding (`other`, `t if …`), or a tuple of
/// nothing else (`(_, _)`).
fn catches_all(pattern: &str) -> bool {
    let pattern = pattern.trim().trim_start_matches('|').trim();
    let pattern = pattern.split(" if ").next().unwrap_or_default();
    let pattern: String = pattern.chars().filter(|c| !c.is_whitespace()).collect();
    let inner = pattern.trim_start_matches('(').trim_end_matches(')');
    inner.split(',').all(|part| {
        let part = part.trim_start_matches("ref").trim_start_matches("mut");
        part == "_"
            || part == ".."
            || (part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && part.chars().all(ident))
    })
}

/// Whether an arm's pattern names an event type or an event.
fn names_an_event(pattern: &str) -> bool {
    ["EventType::", "Event::"].iter().any(|word| {
        pattern
            .match_indices(word)
            .any(|(at, _)| !pattern[..at].ends_with(ident))
    })
}

/// The catch-all arms of a file's code, as their patterns.
fn catch_alls(code: &str, is_routing: bool) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    for body in match_bodies(&chars) {
        let patterns = arm_patterns(body);
        if is_routing || patterns.iter().any(|p| names_an_event(p)) {
            let loose = patterns.iter().filter(|p| catches_all(p));
            found.extend(loose.map(|p| p.trim().to_string()));
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("a folder")
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_event_routing_has_a_catch_all() {
    let services = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for crate_dir in std::fs::read_dir(&services)
        .expect("services/")
        .filter_map(Result::ok)
    {
        let src = crate_dir.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let (mut wrong, mut routes) = (Vec::new(), 0);
    for file in &files {
        let code = code_of(&std::fs::read_to_string(file).expect("a source file"));
        let routing = file.ends_with("events.rs");
        for arm in catch_alls(&code, routing) {
            wrong.push(format!("{}: `{arm} =>`", file.display()));
        }
        let chars: Vec<char> = code.chars().collect();
        routes += (match_bodies(&chars).iter())
            .filter(|body| routing && arm_patterns(body).iter().any(|p| names_an_event(p)))
            .count();
    }
    // Each of the five consuming services routes in its events.rs: the reading found them.
    assert!(routes >= 5, "only {routes} routing matches were read");
    assert!(
        wrong.is_empty(),
        "catch-all arms in event routing: {wrong:#?}"
    );
}

/// A catch-all put back is found, in the routing or in any match over events; what is not one (an
/// exhaustive match, a `_ =>` outside event routing, in a comment, a string or a test) is not.
#[test]
fn a_catch_all_put_back_is_found() {
    let exhaustive = r#"
        fn route(event: &Event) -> Option<Feature<'_>> {
            Some(match event {
                Event::ReferralAccepted(r) => Feature::Places(r),
                Event::CaseOpened(_) | Event::CaseClosed(_) => return None,
            })
        }
        fn label(c: char) -> &'static str { match c { '_' => "_ =>", _ => "other" } }
        // _ => nothing
    "#;
    assert!(catch_alls(&code_of(exhaustive), false).is_empty());
    let planted = [
        "match event.event_type() { EventType::CaseOpened => open(), _ => Ok(()) }",
        "match event { Event::CaseOpened(c) => { open(c) } other => refuse(other), }",
        "match (t, x) { (EventType::CaseOpened, _) => 1, (other, _) => 2 }",
        "match (t, x) { (EventType::CaseOpened, _) => 1, (Event::A(a), _) => 2, (_, _) => 3 }",
        "match t { EventType::CaseOpened => 1, t if t.is_case() => 2, EventType::CasePlaced => 3 }",
        "let a = match e {\n  | EventType::CasePlaced\n  | EventType::CaseClosed => false,\n  _ => true,\n};",
    ];
    for code in planted {
        assert_eq!(catch_alls(&code_of(code), false).len(), 1, "{code}");
    }
    let routing = "match route { Some(Feature::Places(r)) => places(r).await, _ => Ok(()) }";
    assert_eq!(catch_alls(&code_of(routing), true), ["_"]);
    assert!(catch_alls(&code_of(routing), false).is_empty());
    let in_tests =
        "fn f() {}\n#[cfg(test)]\nmod tests { fn g() { match e { Event::A(_) => 1, _ => 2 }; } }";
    assert!(catch_alls(&code_of(in_tests), true).is_empty());
}
