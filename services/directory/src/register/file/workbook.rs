//! The first sheet of an XLSX workbook, read without trusting the file: every part is unpacked once into
//! nothing, counting its real bytes (a zip's declared sizes are the attacker's to choose), before calamine
//! opens the workbook; then the sheet is read cell by cell and only the cells with a value are kept.
//! calamine's `worksheet_range` is not used: it builds a dense grid from the first to the last cell, so a
//! sheet with a value in A1 and another in XFD1048576 asks for half a terabyte.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use super::{Cells, Limits, Line, RegisterError, size_text};

/// Parts calamine reads whole into memory when it opens a workbook (it finds them by these names, in
/// any case, with `\` read as `/`).
const BOOK_PARTS: [&str; 3] = [
    "xl/styles.xml",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
];
const SHARED_STRINGS: &str = "xl/sharedStrings.xml";

/// The lines with a value of the workbook's first sheet, numbered from the first.
pub(super) fn read(bytes: &[u8], limits: &Limits) -> Result<Vec<Line>, RegisterError> {
    check_parts(bytes, limits)?;
    let mut book: calamine::Xlsx<_> =
        calamine::Reader::new(io::Cursor::new(bytes)).map_err(RegisterError::unreadable)?;
    let first = calamine::Reader::sheet_names(&book)
        .into_iter()
        .next()
        .ok_or_else(|| RegisterError::Unreadable("the workbook has no sheet".into()))?;
    let mut sheet = book
        .worksheet_cells_reader(&first)
        .map_err(RegisterError::unreadable)?;
    let mut cells = Cells::new(limits);
    let mut rows: BTreeMap<u32, Vec<(u32, String)>> = BTreeMap::new();
    while let Some(cell) = sheet.next_cell().map_err(RegisterError::unreadable)? {
        let value = cell.get_value();
        if matches!(value, calamine::DataRef::Empty) {
            continue;
        }
        let (row, column) = cell.get_position();
        let text = cell_text(&calamine::Data::from(value.clone()));
        if cells.keep(row, column, &text)? {
            rows.entry(row).or_default().push((column, text));
        }
    }
    Ok(super::numbered(rows.into_iter().collect()))
}

/// A cell as the text a person sees: whole numbers without a decimal point (Excel stores 12 as 12.0).
fn cell_text(cell: &calamine::Data) -> String {
    match cell {
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        other => other.to_string(),
    }
}

/// Refuses a workbook with too many parts, or a part (or all of them) that unpacks to more than the
/// limits allow, or shared strings beyond theirs. Nothing unpacked is kept.
fn check_parts(bytes: &[u8], limits: &Limits) -> Result<(), RegisterError> {
    // Every part has a central directory header with this signature: counting them bounds what the zip
    // reader allocates for its index before it is opened.
    let headers = bytes.windows(4).filter(|w| *w == b"PK\x01\x02").count();
    if headers > limits.parts {
        return Err(RegisterError::over(
            "a workbook of more parts",
            format!("{} parts", limits.parts),
        ));
    }
    let mut archive =
        zip::ZipArchive::new(io::Cursor::new(bytes)).map_err(RegisterError::unreadable)?;
    // The count the archive's end record declares (what the index was sized by) is held to the same bound.
    if archive.len() > limits.parts {
        return Err(RegisterError::over(
            "a workbook of more parts",
            format!("{} parts", limits.parts),
        ));
    }
    let mut total = 0u64;
    for index in 0..archive.len() {
        let part = archive.by_index(index).map_err(RegisterError::unreadable)?;
        let name = shown(part.name());
        let (bound, strings) = bound_of(&name, limits);
        let room = bound.min(limits.unpacked_bytes - total);
        let mut tags = SharedStringTags::default();
        // One byte more than the room shows that the part goes beyond it.
        let unpacked = io::copy(&mut part.take(room + 1), &mut tags)
            .map_err(|e| RegisterError::Unreadable(format!("the part {name:?}: {e}")))?;
        if unpacked > bound {
            return Err(RegisterError::over(
                format!("the part {name:?} unpacks to more"),
                format!("{} for this part", size_text(bound)),
            ));
        }
        total += unpacked;
        if total > limits.unpacked_bytes {
            return Err(RegisterError::over(
                "a workbook that unpacks to more",
                format!("{} in all", size_text(limits.unpacked_bytes)),
            ));
        }
        if strings && tags.count > limits.shared_strings {
            return Err(RegisterError::over(
                "more shared strings",
                format!("{} shared strings", limits.shared_strings),
            ));
        }
    }
    Ok(())
}

/// What the part named `name` may unpack to, and whether it is the shared strings.
fn bound_of(name: &str, limits: &Limits) -> (u64, bool) {
    let name = name.replace('\\', "/");
    if name.eq_ignore_ascii_case(SHARED_STRINGS) {
        (limits.shared_strings_bytes, true)
    } else if BOOK_PARTS.iter().any(|p| name.eq_ignore_ascii_case(p)) {
        (limits.book_part_bytes, false)
    } else {
        (limits.part_bytes, false)
    }
}

/// A part's name as an error message may show it: the file's to choose, so cut short and without
/// control characters.
fn shown(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(120).collect()
}

/// Counts, in the bytes written to it, the start tags that calamine reads as a shared string: an element
/// whose local name is `si` (`<si>`, `<si/>`, `<x:si ...>`). It also counts `</x:si>`, so it counts up
/// to twice too many, never too few.
#[derive(Default)]
struct SharedStringTags {
    window: u32,
    count: usize,
}

impl Write for SharedStringTags {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        for b in bytes {
            self.window = (self.window << 8) | u32::from(*b);
            let [opening, s, i, after] = self.window.to_be_bytes();
            if matches!(opening, b'<' | b':')
                && (s, i) == (b's', b'i')
                && matches!(after, b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n')
            {
                self.count += 1;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_string_tags_are_counted_never_too_few() {
        let mut tags = SharedStringTags::default();
        let xml = "<sst><si><t>a</t></si><si/><x:si a=\"1\"><t>sis</t></x:si><sis/><si\n/></sst>";
        // Split mid-tag: the count carries over writes.
        let (a, b) = xml.split_at(8);
        tags.write_all(a.as_bytes()).expect("write");
        tags.write_all(b.as_bytes()).expect("write");
        // <si>, <si/>, <x:si, </x:si> (the one too many) and <si\n/>; not <sis/> nor </si>.
        assert_eq!(tags.count, 5);
    }
}
