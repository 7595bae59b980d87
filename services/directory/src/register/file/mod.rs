//! Reading a register file into rows of text by column: CSV in UTF-8 (with or without a byte-order mark)
//! or Windows-1251 (what Bulgarian registers published from Excel often are), separated by `,` or `;`, or
//! the first sheet of an XLSX workbook. The header row names the columns in Bulgarian or English
//! ([`Column::headers`]); what the values mean is [`crate::register::import`]'s to decide.
//!
//! Any directory administrator of a national authority or an RDSA may send a file, so a file must not be
//! able to make the reader do more than its size implies: a workbook is checked part by part before it
//! is read ([`workbook`]), and every file is read cell by cell, keeping only cells with a value, within
//! [`Limits`].

mod workbook;

use std::collections::HashMap;

/// The columns an import reads. Other columns in the file are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    RegisterId,
    Name,
    Type,
    Municipality,
    Provider,
    ProviderId,
    Capacity,
    Occupied,
    MinAge,
    MaxAge,
    Status,
    Address,
}

impl Column {
    pub const ALL: [Column; 12] = [
        Column::RegisterId,
        Column::Name,
        Column::Type,
        Column::Municipality,
        Column::Provider,
        Column::ProviderId,
        Column::Capacity,
        Column::Occupied,
        Column::MinAge,
        Column::MaxAge,
        Column::Status,
        Column::Address,
    ];

    /// The headers it is known by, English first (the name reports use), then Bulgarian.
    pub fn headers(self) -> &'static [&'static str] {
        match self {
            Column::RegisterId => &[
                "register_id",
                "рег. номер",
                "регистров номер",
                "номер в регистъра",
            ],
            Column::Name => &["name", "наименование", "наименование на услугата"],
            Column::Type => &["type", "вид", "вид на услугата", "вид услуга"],
            Column::Municipality => &[
                "municipality_code",
                "код на общината",
                "екатте на общината",
                "екатте",
            ],
            Column::Provider => &["provider", "доставчик", "доставчик на услугата"],
            Column::ProviderId => &["provider_id", "еик на доставчика", "еик", "булстат"],
            Column::Capacity => &["capacity", "капацитет", "брой места"],
            Column::Occupied => &["occupied", "заети места", "заети"],
            Column::MinAge => &["min_age", "възраст от", "минимална възраст"],
            Column::MaxAge => &["max_age", "възраст до", "максимална възраст"],
            Column::Status => &["status", "статус", "състояние"],
            Column::Address => &["address", "адрес"],
        }
    }

    pub fn name(self) -> &'static str {
        self.headers()[0]
    }

    /// Whether a file without it is refused as a whole.
    pub fn required(self) -> bool {
        !matches!(
            self,
            Column::ProviderId | Column::Occupied | Column::Status | Column::Address
        )
    }

    fn of_header(header: &str) -> Option<Column> {
        let header = header.trim().to_lowercase();
        Column::ALL
            .into_iter()
            .find(|c| c.headers().contains(&header.as_str()))
    }
}

/// A file that cannot be read as a register at all (a row that cannot be used is refused on its own).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegisterError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is neither CSV nor an XLSX workbook: {0}")]
    Unreadable(String),
    #[error("the header row has no column {0:?} (its Bulgarian names: {1})")]
    MissingColumn(&'static str, String),
    #[error("the header row names column {0:?} twice")]
    DuplicateColumn(&'static str),
    /// The file goes beyond one of the [`Limits`]; `limit` names it ("100000 rows").
    #[error("{what}: the limit is {limit}")]
    OverLimit { what: String, limit: String },
}

impl RegisterError {
    fn over(what: impl Into<String>, limit: impl Into<String>) -> Self {
        Self::OverLimit {
            what: what.into(),
            limit: limit.into(),
        }
    }

    fn unreadable(e: impl std::fmt::Display) -> Self {
        Self::Unreadable(e.to_string())
    }
}

/// What a register file may make the reader do. The largest register (the national one, a few thousand
/// services) is far inside them; a hostile file (a sheet of two cells a million rows apart, a part that
/// unpacks to gigabytes, millions of empty shared strings) is refused before it costs memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rows of a sheet, or records of a CSV file, the header's included.
    pub rows: u32,
    /// Columns: a value in a column beyond is refused.
    pub columns: u32,
    /// Cells with a value.
    pub cells: usize,
    /// Parts (entries) of a workbook.
    pub parts: usize,
    /// What one part of a workbook may unpack to.
    pub part_bytes: u64,
    /// What the styles, the workbook part and its relationships may each unpack to: the reader keeps
    /// them whole in memory.
    pub book_part_bytes: u64,
    /// What the shared strings may unpack to, and how many strings they may hold: the reader keeps them
    /// whole in memory.
    pub shared_strings_bytes: u64,
    pub shared_strings: usize,
    /// What all the parts of a workbook may unpack to together.
    pub unpacked_bytes: u64,
    /// One cell's text: far above any value a register holds (those are refused row by row), low enough
    /// that a shared string repeated in many cells cannot multiply into gigabytes.
    pub cell_bytes: usize,
    /// The text of all the cells kept.
    pub kept_bytes: usize,
}

const MIB: u64 = 1024 * 1024;

impl Limits {
    pub const REGISTER: Limits = Limits {
        rows: 100_000,
        columns: 64,
        cells: 1_500_000,
        parts: 1_000,
        part_bytes: 64 * MIB,
        book_part_bytes: 8 * MIB,
        shared_strings_bytes: 32 * MIB,
        shared_strings: 1_500_000,
        unpacked_bytes: 128 * MIB,
        cell_bytes: 32 * 1024,
        kept_bytes: 64 * 1024 * 1024,
    };
}

/// A size in bytes as a person reads it: whole MiB when it is that, bytes otherwise.
fn size_text(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// One row of the file: its number (the header is row 1) and its cells by column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub number: u32,
    cells: HashMap<Column, String>,
}

impl Row {
    pub fn new(number: u32, cells: HashMap<Column, String>) -> Self {
        Self { number, cells }
    }

    /// The cell of `column`, trimmed; empty when the file has no such column or the cell is empty.
    pub fn get(&self, column: Column) -> &str {
        self.cells.get(&column).map_or("", |v| v.trim())
    }
}

/// A line of the file with a value in it: its number (the first line with a value is 1) and its cells
/// with a value, by column (0 is the first).
struct Line {
    number: u32,
    cells: Vec<(u32, String)>,
}

/// The cells kept so far, held to [`Limits::rows`], [`Limits::columns`] and [`Limits::cells`] as they
/// come.
struct Cells<'a> {
    limits: &'a Limits,
    kept: usize,
    kept_bytes: usize,
}

impl<'a> Cells<'a> {
    fn new(limits: &'a Limits) -> Self {
        Self {
            limits,
            kept: 0,
            kept_bytes: 0,
        }
    }

    /// Whether the cell at `row` and `column` (from 0) holding `text` is kept: refused beyond the
    /// limits, left out when blank.
    fn keep(&mut self, row: u32, column: u32, text: &str) -> Result<bool, RegisterError> {
        if text.trim().is_empty() {
            return Ok(false);
        }
        if row >= self.limits.rows {
            return Err(RegisterError::over(
                format!("a value in row {}", u64::from(row) + 1),
                format!("{} rows", self.limits.rows),
            ));
        }
        if column >= self.limits.columns {
            return Err(RegisterError::over(
                format!("a value in column {}", u64::from(column) + 1),
                format!("{} columns", self.limits.columns),
            ));
        }
        if self.kept >= self.limits.cells {
            return Err(RegisterError::over(
                "more cells with a value",
                format!("{} cells", self.limits.cells),
            ));
        }
        if text.len() > self.limits.cell_bytes {
            return Err(RegisterError::over(
                format!("a longer value in row {}", u64::from(row) + 1),
                format!("{} bytes in a cell", self.limits.cell_bytes),
            ));
        }
        if self.kept_bytes + text.len() > self.limits.kept_bytes {
            return Err(RegisterError::over(
                "more text in its cells",
                format!("{} bytes of text", self.limits.kept_bytes),
            ));
        }
        self.kept += 1;
        self.kept_bytes += text.len();
        Ok(true)
    }
}

/// The file's rows, blank rows left out, within [`Limits::REGISTER`].
pub fn read(bytes: &[u8]) -> Result<Vec<Row>, RegisterError> {
    read_within(bytes, &Limits::REGISTER)
}

/// The file's rows, blank rows left out; a file beyond `limits` is refused naming the limit.
pub fn read_within(bytes: &[u8], limits: &Limits) -> Result<Vec<Row>, RegisterError> {
    if bytes.is_empty() {
        return Err(RegisterError::Empty);
    }
    let table = if bytes.starts_with(b"PK\x03\x04") {
        workbook::read(bytes, limits)?
    } else {
        read_csv(&decode(bytes), limits)?
    };
    let mut lines = table.into_iter();
    let header = lines.next().ok_or(RegisterError::Empty)?;
    let columns: HashMap<u32, Column> = map_header(&header.cells)?.into_iter().collect();
    Ok(lines
        .map(|line| Row {
            number: line.number,
            cells: (line.cells.into_iter())
                .filter_map(|(at, text)| columns.get(&at).map(|column| (*column, text)))
                .collect(),
        })
        .collect())
}

/// UTF-8 when the bytes are valid UTF-8 (a BOM is dropped), else Windows-1251: a Cyrillic text in
/// Windows-1251 is almost never valid UTF-8.
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::WINDOWS_1251.decode(bytes).0.into_owned(),
    }
}

/// Field by field (csv-core), so that a record of millions of empty fields costs nothing kept.
fn read_csv(text: &str, limits: &Limits) -> Result<Vec<Line>, RegisterError> {
    use csv_core::ReadFieldResult;
    let first = text.lines().next().unwrap_or("");
    // Excel in a Bulgarian locale separates with `;`.
    let delimiter = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let mut cells = Cells::new(limits);
    let (mut input, mut out) = (text.as_bytes(), [0u8; 4096]);
    let (mut field, mut line, mut lines) = (Vec::new(), Vec::new(), Vec::new());
    let (mut record, mut column) = (0u32, 0u32);
    loop {
        let (result, read, written) = reader.read_field(input, &mut out);
        input = &input[read..];
        field.extend_from_slice(&out[..written]);
        match result {
            ReadFieldResult::InputEmpty | ReadFieldResult::OutputFull => continue,
            ReadFieldResult::End => break,
            ReadFieldResult::Field { record_end } => {
                // The delimiters and quotes split the text at ASCII bytes: each field is UTF-8.
                let text = String::from_utf8_lossy(&field);
                if cells.keep(record, column, &text)? {
                    line.push((column, text.into_owned()));
                }
                field.clear();
                column = column.saturating_add(1);
                if record_end {
                    if !line.is_empty() {
                        lines.push((record, std::mem::take(&mut line)));
                    }
                    record = record.saturating_add(1);
                    column = 0;
                }
            }
        }
    }
    Ok(numbered(lines))
}

/// Lines with a value, by their row in the file (from 0), numbered from the first.
fn numbered(rows: Vec<(u32, Vec<(u32, String)>)>) -> Vec<Line> {
    let first = rows.first().map_or(0, |(row, _)| *row);
    (rows.into_iter())
        .map(|(row, cells)| Line {
            number: row - first + 1,
            cells,
        })
        .collect()
}

fn map_header(header: &[(u32, String)]) -> Result<Vec<(u32, Column)>, RegisterError> {
    let mut columns: Vec<(u32, Column)> = Vec::new();
    for (at, name) in header {
        let name = name.trim_start_matches('\u{feff}');
        if let Some(column) = Column::of_header(name) {
            if columns.iter().any(|(_, c)| *c == column) {
                return Err(RegisterError::DuplicateColumn(column.name()));
            }
            columns.push((*at, column));
        }
    }
    for column in Column::ALL.into_iter().filter(|c| c.required()) {
        if !columns.iter().any(|(_, c)| *c == column) {
            return Err(RegisterError::MissingColumn(
                column.name(),
                column.headers()[1..].join(", "),
            ));
        }
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER_BG: &str =
        "Рег. номер;Наименование;Вид;Код на общината;Доставчик;Капацитет;Възраст от;Възраст до";

    #[test]
    fn bulgarian_headers_in_windows_1251_with_semicolons() {
        let text =
            format!("{HEADER_BG}\nR-1;ЦНСТ Враца 1;ЦНСТДБУ;VRC10;Фондация Надежда;12;3;17\n\n");
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&text);
        assert!(std::str::from_utf8(&bytes).is_err(), "really Windows-1251");
        let rows = read(&bytes).expect("rows");
        assert_eq!(rows.len(), 1, "the blank line is no row");
        assert_eq!(rows[0].number, 2);
        assert_eq!(rows[0].get(Column::Name), "ЦНСТ Враца 1");
        assert_eq!(rows[0].get(Column::Provider), "Фондация Надежда");
        assert_eq!(
            rows[0].get(Column::Status),
            "",
            "an absent optional column reads empty"
        );
    }

    #[test]
    fn english_headers_in_utf8_with_a_bom_and_quoted_commas() {
        let text = "\u{feff}register_id,name,type,municipality_code,provider,capacity,min_age,max_age,extra\nR-2,\"Crisis centre, Sofia\",CRISIS_CENTRE,SOF46,Provider,8,0,17,ignored\n";
        let rows = read(text.as_bytes()).expect("rows");
        assert_eq!(rows[0].get(Column::RegisterId), "R-2");
        assert_eq!(rows[0].get(Column::Name), "Crisis centre, Sofia");
    }

    #[test]
    fn a_file_without_a_required_column_is_refused_naming_it() {
        let err = read(b"register_id,name,type,provider,capacity,min_age,max_age\n").unwrap_err();
        assert!(
            matches!(err, RegisterError::MissingColumn("municipality_code", ref bg) if bg.contains("код на общината")),
            "{err:?}"
        );
        assert_eq!(read(b"").unwrap_err(), RegisterError::Empty);
        assert_eq!(
            read(b"name,Name\n").unwrap_err(),
            RegisterError::DuplicateColumn("name")
        );
    }

    const HEADER_EN: [&str; 8] = [
        "register_id",
        "name",
        "type",
        "municipality_code",
        "provider",
        "capacity",
        "min_age",
        "max_age",
    ];

    /// A workbook whose first sheet holds `cells` (row, column, text; a text that is a number is written
    /// as one).
    fn workbook(cells: &[(u32, u16, &str)]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (row, column, text) in cells {
            match text.parse::<f64>() {
                Ok(n) => sheet.write_number(*row, *column, n).map(drop),
                Err(_) => sheet.write_string(*row, *column, *text).map(drop),
            }
            .expect("a cell");
        }
        book.save_to_buffer().expect("a workbook")
    }

    /// A zip whose parts are named `parts`, each `size` zero bytes, deflated (a few hundred bytes to the
    /// MiB), with the contents of `extra` after them.
    fn zip_of(parts: &[&str], size: usize, extra: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let zeros = vec![0u8; 1 << 20];
        for name in parts {
            zip.start_file(*name, options).expect("a part");
            let mut left = size;
            while left > 0 {
                let n = left.min(zeros.len());
                zip.write_all(&zeros[..n]).expect("zeros");
                left -= n;
            }
        }
        for (name, bytes) in extra {
            zip.start_file(*name, options).expect("a part");
            zip.write_all(bytes).expect("bytes");
        }
        zip.finish().expect("a zip").into_inner()
    }

    fn limit_of(err: RegisterError) -> String {
        match err {
            RegisterError::OverLimit { limit, .. } => limit,
            other => panic!("not refused for a limit: {other:?}"),
        }
    }

    #[test]
    fn a_good_workbook_reads_as_before() {
        let mut cells: Vec<(u32, u16, &str)> =
            (0u16..).zip(HEADER_EN).map(|(c, h)| (0, c, h)).collect();
        let row = [
            "R-1",
            "ЦНСТ Враца 1",
            "ЦНСТДБУ",
            "VRC10",
            "Фондация",
            "12",
            "3",
            "17",
        ];
        cells.extend((0u16..).zip(row).map(|(c, v)| (1, c, v)));
        // A blank row between, then a row with a value only in a column the header does not name.
        cells.extend([(3, 1, "Кризисен център"), (4, 20, "a note")]);
        let rows = read(&workbook(&cells)).expect("rows");
        assert_eq!(rows.len(), 3, "the blank row is no row");
        assert_eq!(rows[0].number, 2);
        assert_eq!(rows[0].get(Column::Name), "ЦНСТ Враца 1");
        assert_eq!(
            rows[0].get(Column::Capacity),
            "12",
            "a whole number without .0"
        );
        assert_eq!(rows[1].number, 4);
        assert_eq!(rows[1].get(Column::RegisterId), "");
        assert_eq!(rows[2].number, 5);
        assert_eq!(rows[2].get(Column::Name), "");
    }

    #[test]
    fn a_sheet_with_cells_a_million_rows_apart_is_refused_naming_the_limit() {
        // A1 and XFD1048576: the file of issue #25, which made a dense reader ask for 512 GiB.
        let bytes = workbook(&[(0, 0, "register_id"), (1_048_575, 16_383, "x")]);
        assert!(
            bytes.len() < 16 * 1024,
            "a small file: {} bytes",
            bytes.len()
        );
        let err = read(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a value in row 1048576: the limit is 100000 rows"
        );
        // The same far column on the first row.
        let err = read(&workbook(&[(0, 0, "register_id"), (0, 16_383, "x")])).unwrap_err();
        assert_eq!(limit_of(err), "64 columns");
    }

    #[test]
    fn a_part_that_unpacks_beyond_its_bound_is_refused() {
        // 65 MiB of zeros in the sheet: over the 64 MiB a part may unpack to, from a file of kilobytes.
        let bomb = zip_of(&["xl/worksheets/sheet1.xml"], 65 << 20, &[]);
        assert!(bomb.len() < 1 << 20, "a small file: {} bytes", bomb.len());
        let err = read(&bomb).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the part \"xl/worksheets/sheet1.xml\" unpacks to more: the limit is 64 MiB for this part"
        );
        let small = Limits {
            part_bytes: MIB,
            ..Limits::REGISTER
        };
        let bomb = zip_of(&["xl/media/image1.png"], 2 << 20, &[]);
        assert_eq!(
            limit_of(read_within(&bomb, &small).unwrap_err()),
            "1 MiB for this part"
        );
        // The parts calamine keeps whole have a bound of their own.
        let styles = zip_of(&["XL\\Styles.xml"], 9 << 20, &[]);
        assert_eq!(limit_of(read(&styles).unwrap_err()), "8 MiB for this part");
    }

    #[test]
    fn parts_that_unpack_beyond_the_total_are_refused() {
        let limits = Limits {
            part_bytes: MIB,
            unpacked_bytes: 2 * MIB,
            ..Limits::REGISTER
        };
        let names = ["a.xml", "b.xml", "c.xml"];
        let bytes = zip_of(&names, 900 * 1024, &[]);
        assert_eq!(
            limit_of(read_within(&bytes, &limits).unwrap_err()),
            "2 MiB in all"
        );
        let limits = Limits {
            parts: 2,
            ..Limits::REGISTER
        };
        assert_eq!(
            limit_of(read_within(&bytes, &limits).unwrap_err()),
            "2 parts"
        );
    }

    #[test]
    fn shared_strings_beyond_their_count_are_refused() {
        let limits = Limits {
            shared_strings: 1000,
            ..Limits::REGISTER
        };
        let mut strings = String::from("<sst>");
        strings += &"<si/>".repeat(1001);
        strings += "</sst>";
        let bytes = zip_of(&[], 0, &[("xl/sharedStrings.xml", strings.as_bytes())]);
        assert_eq!(
            limit_of(read_within(&bytes, &limits).unwrap_err()),
            "1000 shared strings"
        );
        // A real workbook's shared strings are well within.
        let cells: Vec<(u32, u16, &str)> =
            (0u16..).zip(HEADER_EN).map(|(c, h)| (0, c, h)).collect();
        assert!(read_within(&workbook(&cells), &limits).is_ok());
    }

    #[test]
    fn one_shared_string_in_many_cells_is_held_to_the_text_limits() {
        // One long value repeated down a column: a few kilobytes packed, a shared string each cell points
        // to, gigabytes if every cell kept its own copy.
        let long = "ж".repeat(20_000);
        let mut cells: Vec<(u32, u16, &str)> =
            (0u16..).zip(HEADER_EN).map(|(c, h)| (0, c, h)).collect();
        cells.extend((1..200).map(|r| (r, 1, long.as_str())));
        assert_eq!(
            read(&workbook(&cells)).unwrap_err().to_string(),
            "a longer value in row 2: the limit is 32768 bytes in a cell"
        );
        let fits = "y".repeat(1000);
        let mut cells: Vec<(u32, u16, &str)> =
            (0u16..).zip(HEADER_EN).map(|(c, h)| (0, c, h)).collect();
        cells.extend((1..200).map(|r| (r, 1, fits.as_str())));
        let limits = Limits {
            kept_bytes: 100_000,
            ..Limits::REGISTER
        };
        assert_eq!(
            limit_of(read_within(&workbook(&cells), &limits).unwrap_err()),
            "100000 bytes of text"
        );
        assert_eq!(
            read(&workbook(&cells))
                .expect("within the register's limits")
                .len(),
            199
        );
    }

    #[test]
    fn a_csv_file_is_held_to_the_same_limits() {
        let header = HEADER_EN.join(",");
        let line = "R-1,Name,КЦ,SOF46,P,8,0,17";
        let limits = Limits {
            rows: 3,
            cells: 30,
            ..Limits::REGISTER
        };
        let text = format!("{header}\n{line}\n{line}\n");
        assert_eq!(
            read_within(text.as_bytes(), &limits).expect("rows").len(),
            2
        );
        let text = format!("{header}\n{line}\n{line}\n{line}\n");
        assert_eq!(
            limit_of(read_within(text.as_bytes(), &limits).unwrap_err()),
            "3 rows"
        );
        let limits = Limits {
            cells: 20,
            ..Limits::REGISTER
        };
        assert_eq!(
            limit_of(read_within(text.as_bytes(), &limits).unwrap_err()),
            "20 cells"
        );
        // A million empty fields cost nothing; a value beyond the last column is refused.
        let empty = format!("{header}{}\n{line}\n", ",".repeat(1_000_000));
        assert_eq!(read(empty.as_bytes()).expect("rows").len(), 1);
        let far = format!("{header}{}x\n{line}\n", ",".repeat(100));
        assert_eq!(limit_of(read(far.as_bytes()).unwrap_err()), "64 columns");
    }
}
