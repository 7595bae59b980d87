//! Reading a register file into rows of text by column: CSV in UTF-8 (with or without a byte-order mark)
//! or Windows-1251 (what Bulgarian registers published from Excel often are), separated by `,` or `;`, or
//! the first sheet of an XLSX workbook. The header row names the columns in Bulgarian or English
//! ([`Column::headers`]); what the values mean is [`crate::import`]'s to decide.

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

/// The file's rows, blank rows left out.
pub fn read(bytes: &[u8]) -> Result<Vec<Row>, RegisterError> {
    if bytes.is_empty() {
        return Err(RegisterError::Empty);
    }
    let table = if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(bytes)?
    } else {
        read_csv(&decode(bytes))?
    };
    let mut lines = table.into_iter();
    let header = lines.next().ok_or(RegisterError::Empty)?;
    let columns = map_header(&header)?;
    Ok(lines
        .enumerate()
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
        .map(|(i, cells)| Row {
            number: u32::try_from(i + 2).unwrap_or(u32::MAX),
            cells: columns
                .iter()
                .filter_map(|(at, column)| cells.get(*at).map(|v| (*column, v.clone())))
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

fn read_csv(text: &str) -> Result<Vec<Vec<String>>, RegisterError> {
    let first = text.lines().next().unwrap_or("");
    // Excel in a Bulgarian locale separates with `;`.
    let delimiter = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| {
            r.map(|record| record.iter().map(str::to_string).collect())
                .map_err(|e| RegisterError::Unreadable(e.to_string()))
        })
        .collect()
}

fn read_xlsx(bytes: &[u8]) -> Result<Vec<Vec<String>>, RegisterError> {
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| RegisterError::Unreadable(e.to_string()))?;
    let sheet = book
        .worksheet_range_at(0)
        .ok_or_else(|| RegisterError::Unreadable("the workbook has no sheet".into()))?
        .map_err(|e| RegisterError::Unreadable(e.to_string()))?;
    Ok(sheet
        .rows()
        .map(|row| row.iter().map(cell_text).collect())
        .collect())
}

/// A cell as the text a person sees: whole numbers without a decimal point (Excel stores 12 as 12.0).
fn cell_text(cell: &calamine::Data) -> String {
    match cell {
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        other => other.to_string(),
    }
}

fn map_header(header: &[String]) -> Result<Vec<(usize, Column)>, RegisterError> {
    let mut columns: Vec<(usize, Column)> = Vec::new();
    for (at, name) in header.iter().enumerate() {
        let name = name.trim_start_matches('\u{feff}');
        if let Some(column) = Column::of_header(name) {
            if columns.iter().any(|(_, c)| *c == column) {
                return Err(RegisterError::DuplicateColumn(column.name()));
            }
            columns.push((at, column));
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
}
