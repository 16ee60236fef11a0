//! Rows per second of the merge: a realistic billing profile plus a row of 5 changes (`cargo bench --bench merge`).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pcbulk::input::{Change, InputConfig, Reader, Validity};
use pcbulk::merge::{self, Merged};
use serde_json::{Value, json};
use std::hint::black_box;

/// A billing profile as the API returns it, with keys pcbulk does not know.
fn profile() -> Value {
    json!({
        "id": "7f1c4a2e-1d2e-4f5a-9b6c-000000000001",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "billing@contoso.com",
        "culture": "en-US",
        "language": "en",
        "companyName": "Contoso",
        "defaultAddress": {
            "country": "US", "region": "WA", "city": "Redmond", "state": "WA",
            "addressLine1": "1 Microsoft Way", "addressLine2": "", "postalCode": "98052",
            "firstName": "Ada", "lastName": "Lovelace", "phoneNumber": "4255550100"
        },
        "links": { "self": { "uri": "/customers/x/profiles/billing", "method": "GET", "headers": [] } },
        "attributes": { "etag": "eyJpZCI6IjEyMyIsInZlcnNpb24iOjN9", "objectType": "CustomerBillingProfile" },
        "extensions": { "unknownToPcbulk": [1, 2, 3], "nested": { "deep": true } }
    })
}

/// The changes of one row: a company rename and an office move.
fn changes() -> Vec<Change> {
    let csv = "customer_id,companyName,defaultAddress.city,defaultAddress.addressLine1,defaultAddress.postalCode,email\n\
               7f1c4a2e-1d2e-4f5a-9b6c-000000000001,Fabrikam,Seattle,410 Terry Ave N,98109,ap@fabrikam.com\n";
    let mut reader = Reader::new(csv.as_bytes(), InputConfig::default()).expect("a good header");
    let record = reader.next_record().expect("one row").expect("a readable row");
    match record.validity {
        Validity::Valid(row) => row.changes,
        Validity::Invalid(problems) => panic!("the bench row is invalid: {problems:?}"),
    }
}

fn merge_rows(c: &mut Criterion) {
    let (profile, changes) = (profile(), changes());
    assert!(matches!(merge::merge(profile.clone(), &changes), Ok(Merged::Changed { .. })));
    let mut group = c.benchmark_group("merge");
    group.throughput(Throughput::Elements(1));
    // The merge takes the profile read and changes it in place: each run gets its own copy, made outside the timing.
    group.bench_function("profile + 5 changes", |bench| {
        bench.iter_batched(
            || profile.clone(),
            |profile| merge::merge(black_box(profile), black_box(&changes)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, merge_rows);
criterion_main!(benches);
