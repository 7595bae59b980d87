//! The glossary (`docs/glossary.md`) held to: no Bulgarian message of the catalogues (the web app's, and the
//! notices' in `services/wording` where it is) names a concept by a word the glossary rejected for it, and
//! «изход» means only signing out.

use std::path::Path;

const GLOSSARY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/glossary.md");
const BULGARIAN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/locales/bg");
const NOTICES_BULGARIAN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../wording/locales/bg");

/// The concepts the glossary must give words for.
const CONCEPTS: [&str; 12] = [
    "referral",
    "case",
    "service",
    "acknowledgement",
    "placement",
    "decline",
    "withdrawal",
    "escalation",
    "standing request",
    "search",
    "reference",
    "waiting reason",
];

/// One row of the glossary's table: the concept, its Bulgarian word and the words rejected for it.
struct Entry {
    concept: String,
    chosen: String,
    rejected: Vec<String>,
}

/// The words between «» in a cell.
fn quoted(cell: &str) -> Vec<String> {
    cell.split('«')
        .skip(1)
        .filter_map(|s| s.split_once('»').map(|(w, _)| w.to_lowercase()))
        .collect()
}

fn entries(markdown: &str) -> Vec<Entry> {
    let table = markdown.split("## Words").nth(1).expect("a Words section");
    table
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .skip(1)
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // "", concept, English, Bulgarian, rejected, why, ""
            Some(Entry {
                concept: cells.get(1)?.to_string(),
                chosen: quoted(cells.get(3)?).into_iter().next()?,
                rejected: quoted(cells.get(4)?),
            })
        })
        .collect()
}

/// A word's stem as the check compares it: without a final vowel, so that its other forms share it
/// («насочване» → «насочван», which begins «насочването» and «насочвания»).
fn stem(word: &str) -> String {
    let mut s = word.to_lowercase();
    if s.chars().count() > 4 && s.ends_with(['а', 'е', 'и', 'о', 'у', 'ъ', 'я', 'ю']) {
        s.pop();
    }
    s
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The rejected word (with its concept) that `text` uses, if any.
fn rejected_in<'a>(entries: &'a [Entry], text: &str) -> Option<(&'a Entry, String)> {
    words(text).find_map(|w| {
        entries.iter().find_map(|e| {
            (e.rejected.iter())
                .find(|r| w.starts_with(&stem(r)))
                .map(|_| (e, w.clone()))
        })
    })
}

/// Every message of the Bulgarian catalogues: (key, text), continuation lines joined, comments left out.
fn bulgarian_messages() -> Vec<(String, String)> {
    let notices = (Path::new(NOTICES_BULGARIAN).is_dir()).then_some(NOTICES_BULGARIAN);
    let mut files: Vec<_> = ([BULGARIAN].into_iter().chain(notices))
        .flat_map(|dir| std::fs::read_dir(Path::new(dir)).expect("a catalogue folder"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ftl"))
        .collect();
    files.sort();
    let mut messages: Vec<(String, String)> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a catalogue");
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(last) = messages.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once('=') {
                messages.push((key.trim().to_string(), value.trim().to_string()));
            }
        }
    }
    messages
}

fn glossary() -> Vec<Entry> {
    entries(&std::fs::read_to_string(GLOSSARY).expect("docs/glossary.md"))
}

#[test]
fn the_glossary_gives_one_bulgarian_word_for_each_concept() {
    let entries = glossary();
    for concept in CONCEPTS {
        let entry = entries.iter().find(|e| e.concept == concept);
        let entry = entry.unwrap_or_else(|| panic!("the glossary has no row for {concept}"));
        assert!(!entry.chosen.is_empty(), "{concept}: no Bulgarian word");
    }
    let referral = entries
        .iter()
        .find(|e| e.concept == "referral")
        .expect("referral");
    assert_eq!(referral.chosen, "направление");
    assert!(referral.rejected.contains(&"насочване".to_string()));
}

#[test]
fn the_check_finds_a_rejected_word_in_any_of_its_forms() {
    let entries = glossary();
    let (entry, word) = rejected_in(&entries, "Получихте ново насочване").expect("found");
    assert_eq!(
        (entry.concept.as_str(), word.as_str()),
        ("referral", "насочване")
    );
    let (_, word) = rejected_in(&entries, "Насочванията на областта").expect("found");
    assert_eq!(word, "насочванията");
    assert!(rejected_in(&entries, "Получени направления").is_none());
}

#[test]
fn no_bulgarian_message_uses_a_rejected_word() {
    let entries = glossary();
    let messages = bulgarian_messages();
    assert!(messages.len() > 100, "{} messages read", messages.len());
    let wrong: Vec<String> = (messages.iter())
        .filter_map(|(key, text)| {
            let (entry, word) = rejected_in(&entries, text)?;
            Some(format!(
                "{key}: «{word}» for {} (the glossary's word: «{}»)",
                entry.concept, entry.chosen
            ))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn izhod_means_only_signing_out() {
    let using: Vec<String> = (bulgarian_messages().into_iter())
        .filter(|(_, text)| words(text).any(|w| w == "изход"))
        .map(|(key, _)| key)
        .collect();
    assert_eq!(using, ["sign-out"]);
}
