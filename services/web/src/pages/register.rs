//! The register imported from the web app, by a directory administrator of a national authority or of an
//! RDSA: the file uploaded, sent to the directory's `ImportServices` as it is, and its report shown — what
//! was created, updated (with each change) or refused (with the column and why), and what the file no
//! longer lists. A dry run, the default, changes nothing.

use askama::Template;
use axum::{
    extract::{Multipart, State, multipart::MultipartError},
    http::StatusCode,
    response::Response,
};
use placement_platform::caller::Role;
use placement_proto::v1::{
    AgencyKind, ImportOptions, ImportOutcome, ImportServicesChunk, ImportServicesReport,
    import_services_chunk::Part,
};
use tonic::Code;

use super::{Chrome, check_csrf, render, standing};
use crate::{AppState, WebError, i18n::Lang, session::Session};

/// Rows of the report shown on the page (a report of thousands of rows is for the command line's CSV).
const SHOWN_ROWS: usize = 500;

pub struct ReportRow {
    pub row: u32,
    pub register_id: String,
    pub refused: bool,
    pub column: String,
    pub detail: String,
}

pub struct Report {
    pub dry_run: bool,
    pub rows: u32,
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub refused: u32,
    pub providers: u32,
    pub lines: Vec<ReportRow>,
    pub missing: Vec<(String, bool, String)>,
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterView {
    c: Chrome,
    error: String,
    report: Option<Report>,
}

pub async fn form(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
) -> Result<Response, WebError> {
    render(&RegisterView {
        c: Chrome::of(&app, &session, lang, "/directory/import").await,
        error: String::new(),
        report: None,
    })
}

/// What the form sent: the file's name and bytes, and the two choices.
struct Upload {
    csrf: String,
    file_name: String,
    bytes: Vec<u8>,
    dry_run: bool,
    close_missing: bool,
}

async fn read_form(mut form: Multipart) -> Result<Upload, MultipartError> {
    let mut upload = Upload {
        csrf: String::new(),
        file_name: String::new(),
        bytes: Vec::new(),
        dry_run: false,
        close_missing: false,
    };
    while let Some(field) = form.next_field().await? {
        match field.name().unwrap_or_default() {
            "csrf" => upload.csrf = field.text().await?,
            "register" => {
                upload.file_name = field.file_name().unwrap_or("register").to_string();
                upload.bytes = field.bytes().await?.to_vec();
            }
            "dry_run" => upload.dry_run = true,
            "close_missing" => upload.close_missing = true,
            _ => {}
        }
    }
    Ok(upload)
}

pub async fn import(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    form: Multipart,
) -> Result<Response, WebError> {
    // Refused before the file is read: only those who may import make the app hold an upload.
    if !may_import(&app, &session).await {
        let c = Chrome::of(&app, &session, lang, "/directory/import").await;
        let error = c.t("register-not-allowed");
        return refused(c, error, StatusCode::FORBIDDEN);
    }
    let upload = match read_form(form).await {
        Ok(upload) => upload,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let c = Chrome::of(&app, &session, lang, "/directory/import").await;
            let error = c.t("register-too-large");
            return refused(c, error, StatusCode::PAYLOAD_TOO_LARGE);
        }
        Err(e) => return Err(WebError::BadRequest(e.body_text())),
    };
    check_csrf(&session, &upload.csrf)?;
    let (report, error) = match send(&app, &session, upload).await {
        Ok(report) => (Some(Report::of(report)), String::new()),
        // The file's or the person's fault, or another import running: said on the page, beside the
        // form.
        Err(status)
            if matches!(
                status.code(),
                Code::InvalidArgument
                    | Code::PermissionDenied
                    | Code::FailedPrecondition
                    | Code::Aborted
            ) =>
        {
            (None, status.message().to_string())
        }
        Err(status) => return Err(status.into()),
    };
    render(&RegisterView {
        c: Chrome::of(&app, &session, lang, "/directory/import").await,
        error,
        report,
    })
}

/// Whether the person may import as far as the app can tell: the role, and an agency of national or
/// district standing. When the directory cannot say what the agency is, it decides when the file comes.
async fn may_import(app: &AppState, session: &Session) -> bool {
    session.roles.has(Role::DirectoryAdmin)
        && standing(app, session)
            .await
            .is_none_or(|s| matches!(s.kind, AgencyKind::NationalAuthority | AgencyKind::Rdsa))
}

/// The form again with `error` beside it, answered with `status`.
fn refused(c: Chrome, error: String, status: StatusCode) -> Result<Response, WebError> {
    let mut response = render(&RegisterView {
        c,
        error,
        report: None,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

async fn send(
    app: &AppState,
    session: &Session,
    upload: Upload,
) -> Result<ImportServicesReport, tonic::Status> {
    let mut messages = vec![ImportServicesChunk {
        part: Some(Part::Options(ImportOptions {
            file_name: upload.file_name,
            dry_run: upload.dry_run,
            close_missing: upload.close_missing,
        })),
    }];
    messages.extend(upload.bytes.chunks(32 * 1024).map(|c| ImportServicesChunk {
        part: Some(Part::Data(c.to_vec())),
    }));
    let mut request = session.request(tokio_stream::iter(messages));
    request.set_timeout(std::time::Duration::from_secs(120));
    let mut answers = app
        .clients
        .directory
        .clone()
        .import_services(request)
        .await?
        .into_inner();
    while let Some(answer) = answers.message().await? {
        if let Some(report) = answer.report {
            return Ok(report);
        }
    }
    Err(tonic::Status::unavailable(
        "the import ended without its report",
    ))
}

impl Report {
    fn of(r: ImportServicesReport) -> Self {
        let lines = (r.results.iter())
            .filter(|row| {
                row.outcome == ImportOutcome::Refused as i32
                    || row.outcome == ImportOutcome::Updated as i32
            })
            .take(SHOWN_ROWS)
            .map(|row| {
                let refused = row.outcome == ImportOutcome::Refused as i32;
                ReportRow {
                    row: row.row,
                    register_id: row.register_id.clone(),
                    refused,
                    column: row.column.clone(),
                    detail: if refused {
                        row.reason.clone()
                    } else {
                        row.changes.join("; ")
                    },
                }
            })
            .collect();
        Self {
            dry_run: r.dry_run,
            rows: r.rows,
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
            refused: r.refused,
            providers: r.providers_created,
            lines,
            missing: (r.missing.into_iter())
                .map(|m| (m.register_id, m.closed, m.reason))
                .collect(),
        }
    }
}
