//! Rows per second of recording outcomes through the [`Recorder`] into a state file on disk (group commit):
//! `cargo bench --bench state`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pcbulk::state::{CallRecord, JobKind, PlannedRow, Recorder, RowOutcome, RowStatus, StateFile};

/// A state file in `dir` holding a job of `rows` pending rows.
fn planned(dir: &tempfile::TempDir, rows: u64) -> (StateFile, i64) {
    let path = dir.path().join(format!("bench-{}.pcbulk.db", uuid::Uuid::new_v4()));
    let mut state = StateFile::open_for_job(&path).expect("a fresh state file");
    let plan = (0..rows).map(|index| {
        Ok(PlannedRow {
            line: index + 2,
            customer_id: format!("{index:08x}-aaaa-4bbb-8ccc-{index:012x}"),
            status: RowStatus::Pending,
            error: String::new(),
            warnings: String::new(),
            plan: None,
        })
    });
    let job = state.create_job(JobKind::Apply, "bench.csv", "hash", "http://127.0.0.1", plan).unwrap().unwrap();
    (state, job.id)
}

fn record_outcomes(c: &mut Criterion) {
    // `cargo test --all-targets` runs this once without `--bench`: keep that run small.
    let rows: u64 = if std::env::args().any(|arg| arg == "--bench") { 10_000 } else { 500 };
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut group = c.benchmark_group("state");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    group.bench_function("record outcomes", |bench| {
        bench.iter_batched(
            || planned(&dir, rows),
            |(state, job)| {
                let recorder = Recorder::start(state, job);
                let handle = recorder.handle();
                for index in 0..rows {
                    let outcome = RowOutcome::new(index + 2, RowStatus::Unchanged).with_call(CallRecord {
                        http_status: Some(200),
                        attempts: Some(1),
                        request_id: Some(uuid::Uuid::new_v4().to_string()),
                        correlation_id: Some(uuid::Uuid::new_v4().to_string()),
                        ..CallRecord::default()
                    });
                    handle.record(outcome).expect("the recorder runs");
                }
                recorder.finish().expect("every outcome committed")
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, record_outcomes);
criterion_main!(benches);
