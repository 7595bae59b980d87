//! The register import cannot crash the directory (issue #25): a workbook of a few kilobytes with values
//! in A1 and XFD1048576 (which made the old reader ask for 512 GiB and abort the process) and a zip bomb
//! are refused with INVALID_ARGUMENT naming the limit; a provider's directory administrator is refused for
//! its standing before its file is read, even one that never ends; a second import while one runs is
//! refused with ABORTED; and afterwards the same directory process still answers.

use std::time::Instant;

use placement_cli::{
    clients::{as_agency, as_agency_with},
    import,
};
use placement_platform::caller::Role;
use placement_proto::v1::{
    ImportOptions, ImportServicesChunk, ImportServicesReport, SearchServicesRequest,
    import_services_chunk::Part,
};
use sqlx::Connection;
use tokio::sync::mpsc;
use tonic::{Code, Status};
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

/// A register with its header and no services: what a probe import sends.
const HEADER_ONLY: &str =
    "register_id,name,type,municipality_code,provider,capacity,min_age,max_age\n";

/// The file of the issue: `register_id` in A1 and a value in XFD1048576, the last cell a sheet has.
fn far_apart_workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "register_id").expect("A1");
    sheet
        .write_string(1_048_575, 16_383, "x")
        .expect("XFD1048576");
    book.save_to_buffer().expect("a workbook")
}

/// A zip whose sheet part is `size` zero bytes, deflated: about a thousandth of that on the wire.
fn zip_bomb(size: usize) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("xl/worksheets/sheet1.xml", options)
        .expect("a part");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..size / zeros.len() {
        zip.write_all(&zeros).expect("zeros");
    }
    zip.finish().expect("a zip").into_inner()
}

fn options(name: &str) -> ImportServicesChunk {
    ImportServicesChunk {
        part: Some(Part::Options(ImportOptions {
            file_name: name.to_string(),
            dry_run: true,
            close_missing: false,
        })),
    }
}

/// A dry-run import of `bytes` as `agency`'s directory administrator (and only that role).
async fn import_as_admin(
    f: &Fixture,
    agency: Uuid,
    bytes: &[u8],
) -> Result<ImportServicesReport, Status> {
    let mut messages = vec![options("register.xlsx")];
    messages.extend(bytes.chunks(32 * 1024).map(|c| ImportServicesChunk {
        part: Some(Part::Data(c.to_vec())),
    }));
    let request = as_agency_with(
        agency,
        &[Role::DirectoryAdmin],
        tokio_stream::iter(messages),
    );
    let mut answers = (f.clients.directory.clone())
        .import_services(request)
        .await?
        .into_inner();
    while let Some(answer) = answers.message().await? {
        if let Some(report) = answer.report {
            return Ok(report);
        }
    }
    Err(Status::unavailable("the import ended without its report"))
}

async fn dry_run(f: &Fixture, agency: Uuid, bytes: &[u8]) -> Result<ImportServicesReport, Status> {
    import::import(
        &mut f.clients.directory.clone(),
        agency,
        "probe.csv",
        bytes,
        true,
        false,
    )
    .await
}

type Held = (
    mpsc::Sender<ImportServicesChunk>,
    tokio::task::JoinHandle<Result<ImportServicesReport, Status>>,
);

/// An import whose file has not ended: its options sent, its data held back by the returned sender.
async fn held_import(f: &Fixture, agency: Uuid) -> Held {
    let (sender, chunks) = mpsc::channel(4);
    sender.send(options("held.csv")).await.expect("options");
    let mut directory = f.clients.directory.clone();
    let request = as_agency(agency, tokio_stream::wrappers::ReceiverStream::new(chunks));
    let call = tokio::spawn(async move {
        let mut answers = directory.import_services(request).await?.into_inner();
        while let Some(answer) = answers.message().await? {
            if let Some(report) = answer.report {
                return Ok(report);
            }
        }
        Err(Status::unavailable("the import ended without its report"))
    });
    (sender, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_register_files_are_refused_and_the_directory_goes_on() {
    let mut f = Fixture::start().await;
    let pid_before = f.stack.pids();
    let rdsa = f.agency("rdsa-vratsa");
    let provider = f.agency("provider-vratsa");

    let far_apart = far_apart_workbook();
    assert!(far_apart.len() < 16 * 1024, "{} bytes", far_apart.len());
    let status = import_as_admin(&f, rdsa, &far_apart).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.message(),
        "data: a value in row 1048576: the limit is 100000 rows"
    );

    // 256 MiB of zeros in the sheet, a few hundred KiB on the wire.
    let bomb = zip_bomb(256 << 20);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let status = import_as_admin(&f, rdsa, &bomb).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.message(),
        "data: the part \"xl/worksheets/sheet1.xml\" unpacks to more: the limit is 64 MiB for this part"
    );

    // A provider's directory administrator: refused for its standing, not for the file (the same bomb
    // would be INVALID_ARGUMENT were it read).
    let status = import_as_admin(&f, provider, &bomb).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    provider_refused_before_its_file_ends(&f, provider).await;

    one_import_at_a_time(&f, rdsa).await;

    // The same directory process still answers: nothing exited, the pids are those of the start, and
    // it serves reads.
    assert_eq!(f.stack.exited(), None, "{}", f.stack.logs());
    assert_eq!(f.stack.pids(), pid_before);
    assert_eq!(f.stack.health("directory").await, Some(1), "SERVING");
    let ftpc = f.demo.service("ftpc-vratsa");
    assert_eq!(f.service(ftpc).await.id, ftpc.to_string());
    let found = (f.clients.directory.clone())
        .search_services(as_agency(
            f.agency("dsa-vratsa"),
            SearchServicesRequest {
                region_code: "VRC".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("SearchServices")
        .into_inner();
    assert!(
        found.services.iter().any(|s| s.id == ftpc.to_string()),
        "{found:?}"
    );
    // Every import was refused or a dry run: none was recorded.
    let mut db = sqlx::PgConnection::connect(&f.stack.database_url)
        .await
        .expect("db");
    let imports: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM directory.audit_trail WHERE record_type = 'service_import'",
    )
    .fetch_one(&mut db)
    .await
    .expect("audit trail");
    assert_eq!(imports, 0);
}

/// A provider's import whose file never ends is refused all the same: its standing is checked before its
/// file is read.
async fn provider_refused_before_its_file_ends(f: &Fixture, provider: Uuid) {
    let (sender, chunks) = mpsc::channel(4);
    sender.send(options("endless.xlsx")).await.expect("options");
    let request = as_agency_with(
        provider,
        &[Role::DirectoryAdmin],
        tokio_stream::wrappers::ReceiverStream::new(chunks),
    );
    let answer = tokio::time::timeout(WAIT, f.clients.directory.clone().import_services(request))
        .await
        .expect("refused without waiting for the file's end");
    let status = answer.map(drop).unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    drop(sender);
}

/// While an import's file is still coming, another import is refused with ABORTED; once it ends, the
/// next runs.
async fn one_import_at_a_time(f: &Fixture, rdsa: Uuid) {
    let deadline = Instant::now() + WAIT;
    let (mut sender, mut held) = held_import(f, rdsa).await;
    loop {
        assert!(
            Instant::now() < deadline,
            "no import was refused while another was running"
        );
        if held.is_finished() {
            // A probe held the lock when the held import came: that one was refused; send it again.
            let status = held.await.expect("the call").unwrap_err();
            assert_eq!(status.code(), Code::Aborted, "{status:?}");
            (sender, held) = held_import(f, rdsa).await;
        }
        match dry_run(f, rdsa, HEADER_ONLY.as_bytes()).await {
            Err(status) if status.code() == Code::Aborted => {
                assert!(
                    status
                        .message()
                        .contains("another register import is running"),
                    "{status:?}"
                );
                break;
            }
            // The held import has not reached the directory yet.
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            Err(status) => panic!("a probe import: {status:?}"),
        }
    }
    let data = ImportServicesChunk {
        part: Some(Part::Data(HEADER_ONLY.as_bytes().to_vec())),
    };
    sender.send(data).await.expect("the held file's data");
    drop(sender);
    let report = held.await.expect("the call").expect("the held import");
    assert!(report.dry_run);
    dry_run(f, rdsa, HEADER_ONLY.as_bytes())
        .await
        .expect("the next import runs once the first has ended");
}
