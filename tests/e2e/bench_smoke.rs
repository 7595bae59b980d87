//! The benchmark, for seconds and at a tiny load: it completes and reports every figure.

use placement_e2e::bench::{self, BenchConfig, Report};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_runs_and_reports_every_figure() {
    let out = std::env::temp_dir().join(format!("placement-bench-smoke-{}", std::process::id()));
    let report = bench::run(BenchConfig::smoke(out.clone())).await;
    assert_the_raw_figures(&report);
    assert_the_first_steps_figures(&report);
    assert_reads_pages_and_reports(&report);
    assert_processes_and_the_cost_of_observing(&report);
    assert_a_search_to_five_services(&report);
    assert_what_a_flow_costs_each_service(&report);
    assert_the_table_names_every_figure(&report);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    assert!(json["raw"]["pg_commits_per_s_32_conns"].as_f64().unwrap() > 0.0);
    assert!(
        json["search"]["time_to_first_offer"]["p50_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        std::fs::read_to_string(out.join("latency.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    let _ = std::fs::remove_dir_all(out);
}

fn assert_the_raw_figures(report: &Report) {
    let raw = &report.raw;
    assert!(raw.pg_commits_per_s_1_conn > 0.0 && raw.pg_commits_per_s_32_conns > 0.0);
    assert!(raw.amqp_confirmed_round_trips_per_s_100_in_flight > 0.0);
    assert!(
        raw.amqp_round_trip_1_in_flight.count > 0 && raw.amqp_round_trip_1_in_flight.p99_ms > 0.0
    );
    assert!(raw.grpc_health_checks_per_s > 0.0);
}

fn assert_the_first_steps_figures(report: &Report) {
    let raw = &report.raw;
    assert!(!report.steps.is_empty());
    let first = &report.steps[0];
    assert!(
        first.calls.submit.count > 0
            && first.calls.acknowledge.count > 0
            && first.calls.accept.count > 0
            && first.calls.confirm_placement.count > 0
    );
    assert!(
        first.commit_to_notification_visible.count > 0,
        "no submission became visible to its recipient"
    );
    assert_eq!(first.errors, 0);
    assert_eq!(
        first.cpu_seconds_per_flow.len(),
        placement_platform::services::ALL.len()
    );
    // Five calls per flow are audited (and the case read on submission); the notifications service alone
    // applies the five referral events of a flow.
    let work = &first.work_per_flow;
    assert!(
        work.audited_calls >= 5.0 && work.deliveries >= 5.0 && work.events >= 5.0,
        "{work:?}"
    );
    assert!(work.ceiling(raw) > 0.0 && work.ceiling_batched(raw) >= work.ceiling(raw));
}

fn assert_reads_pages_and_reports(report: &Report) {
    for reads in [&report.empty_history, &report.large_history] {
        assert!(
            reads.get_referral.count > 0
                && reads.list_referrals_busy_agency.count > 0
                && reads.search_services.count > 0
        );
    }
    let web = &report.web_pages;
    assert!(
        web.inbox.count > 0 && web.referral_list.count > 0 && web.referral_page.count > 0,
        "{web:?}"
    );
    assert_eq!(web.failed_pages, 0, "every page answered 200 OK");
    assert!(web.background_offered_flows_per_s > 0.0);
    let reports = &report.reports;
    assert!(
        reports.district_30_days.count > 0
            && reports.district_365_days.count > 0
            && reports.export_xlsx_30_days.count > 0
            && reports.read_model_lag.count > 0,
        "{reports:?}"
    );
    assert_eq!(reports.failed_calls, 0, "every report call answered");
}

/// Every service and the web app; the cost of observing: each setting ran its flows.
fn assert_processes_and_the_cost_of_observing(report: &Report) {
    assert_eq!(
        report.processes.len(),
        placement_platform::services::ALL.len() + 1
    );
    assert!(
        report
            .processes
            .values()
            .all(|p| p.idle_rss_mib > 0.0 && p.peak_rss_mib >= p.idle_rss_mib)
    );
    // The cost of observing: each setting ran its flows.
    let settings: Vec<&str> = report
        .telemetry
        .iter()
        .map(|r| r.setting.as_str())
        .collect();
    assert_eq!(settings, ["off", "metrics", "metrics and traces"]);
    assert!(
        report
            .telemetry
            .iter()
            .all(|r| r.flows > 0 && r.cpu_seconds_per_flow > 0.0),
        "{:?}",
        report.telemetry
    );
}

/// Searches to five services ran to their placement, each with a first offer, and every service's CPU per
/// search is there (the referrals service's, which takes every step, above nothing).
fn assert_a_search_to_five_services(report: &Report) {
    let search = &report.search;
    assert!(search.searches > 0, "{search:?}");
    assert_eq!(search.errors, 0, "{:?}", search.error_kinds);
    let first = &search.time_to_first_offer;
    assert_eq!(first.count, search.searches, "{search:?}");
    assert!(
        first.p50_ms > 0.0 && first.p99_ms >= first.p50_ms,
        "{first:?}"
    );
    assert_eq!(
        search.cpu_ms_per_search.len(),
        placement_platform::services::ALL.len(),
        "{search:?}"
    );
    assert!(search.cpu_ms_per_search["referrals"] > 0.0, "{search:?}");
}

/// The counted steady run: every service's round trips are there, and its AMQP client's I/O thread spent a
/// part of its CPU, never more than all of it (but for one clock tick, the two being read apart).
fn assert_what_a_flow_costs_each_service(report: &Report) {
    let costs = report.costs.as_ref().expect("the counted steady run");
    assert!(costs.flows > 0, "{costs:?}");
    assert_eq!(
        costs.services.len(),
        placement_platform::services::ALL.len()
    );
    #[allow(clippy::cast_precision_loss)] // a few flows
    let tick_ms_per_flow = 10.0 / costs.flows as f64;
    for (name, cost) in &costs.services {
        assert!(
            cost.round_trips_per_flow.is_some_and(|n| n > 0.0),
            "{name}: {cost:?}"
        );
        assert!(
            cost.amqp_io_ms_per_flow >= 0.0
                && cost.amqp_io_ms_per_flow <= cost.cpu_ms_per_flow + tick_ms_per_flow,
            "{name}: {cost:?}"
        );
    }
}

fn assert_the_table_names_every_figure(report: &Report) {
    let table = bench::table(report);
    // Whether a load of a few flows in half a second "held" depends on what else the machine is doing
    // (the other tests run beside this one), so either verdict is fine; the figures must be there.
    assert!(
        table.contains("PostgreSQL insert+commit")
            && table.contains("Cost of observing")
            && table.contains("GetReferral")
            && (table.contains("Peak that held") || table.contains("No load held"))
            && table.contains("Durable work per flow")
            && table.contains("CPU seconds per flow")
            && table.contains("Web app pages")
            && table.contains("Referral page")
            && table.contains("Read model lag")
            && table.contains("Search to five services")
            && table.contains("Time to first offer")
            && table.contains("CPU ms per search"),
        "{table}"
    );
    // This run's headline row, ready to keep, ends with its searches' figures (none of them missing).
    let row = (table.lines())
        .skip_while(|l| !l.starts_with("To keep this run's row"))
        .nth(1)
        .expect("this run's row");
    let cells: Vec<&str> = row.split('\t').collect();
    assert_eq!(cells.len(), 19, "{row}");
    assert!(cells[11..].iter().all(|c| *c != "-"), "{row}");
}
