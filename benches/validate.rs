//! Rows per second of read + validate on a generated file (`cargo bench --bench validate`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pcbulk::input::{InputConfig, Reader, Validity};
use std::fmt::Write;

/// A CSV of `rows` valid rows touching several fields each, like an office move.
fn generate(rows: usize) -> Vec<u8> {
    let mut text = String::from(
        "customer_id,email,culture,defaultAddress.country,defaultAddress.state,defaultAddress.city,\
         defaultAddress.addressLine1,defaultAddress.postalCode\n",
    );
    for row in 0..rows {
        let _ = writeln!(
            text,
            "{:08x}-1d2e-4f5a-9b6c-{:012x},billing{row}@contoso.com,en-US,us,WA,Seattle,{row} Westlake Ave N,98109",
            row, row
        );
    }
    text.into_bytes()
}

fn read_and_validate(c: &mut Criterion) {
    let rows = 100_000;
    let file = generate(rows);
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(10);
    group.bench_function("read+validate rows", |bench| {
        bench.iter(|| {
            let reader = Reader::new(&file[..], InputConfig::default()).expect("a good header");
            let valid =
                reader.filter(|record| matches!(record, Ok(record) if matches!(record.validity, Validity::Valid(_))));
            assert_eq!(valid.count(), rows);
        })
    });
    group.finish();
}

criterion_group!(benches, read_and_validate);
criterion_main!(benches);
