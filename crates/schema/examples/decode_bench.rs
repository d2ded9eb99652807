//! Decoding throughput: the same orders as Avro in the Confluent wire format
//! (decoded by `switchyard_schema::avro::Avro<T>` and `AvroJson`) and as JSON
//! (decoded by the runtime's `Json<T>`), in one run, one thread, through the
//! `Deserializer` trait as a listener's worker calls it.
//!
//! The writer schema is in the client's cache (preloaded), as it is for every
//! record after the first of its id: what is measured is decoding, not the
//! registry.
//!
//! ```sh
//! cargo run --release -p switchyard-schema --example decode_bench [records] [rounds]
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use switchyard_runtime::deserializer::{Deserializer, Json};
use switchyard_schema::apache_avro::{writer::datum::GenericDatumWriter, Schema};
use switchyard_schema::avro::{Avro, AvroJson};
use switchyard_schema::wire::frame;
use switchyard_schema::{RegisteredSchema, RegistryConfig, SchemaRegistry, SchemaType};

const SCHEMA: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},
  {"name":"customer","type":"string"},
  {"name":"item","type":"string"},
  {"name":"quantity","type":"int"},
  {"name":"price","type":"double"},
  {"name":"express","type":"boolean"},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"tags","type":{"type":"array","items":"string"}}]}"#;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: i64,
    customer: String,
    item: String,
    quantity: i32,
    price: f64,
    express: bool,
    note: Option<String>,
    tags: Vec<String>,
}

/// The same fields under the record's name, for `Avro::direct`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Order")]
struct NamedOrder {
    id: i64,
    customer: String,
    item: String,
    quantity: i32,
    price: f64,
    express: bool,
    note: Option<String>,
    tags: Vec<String>,
}

fn order(i: i64) -> Order {
    Order {
        id: i,
        customer: format!("customer-{:06}", i % 50_000),
        item: format!("item-{}", i % 977),
        quantity: (i % 9) as i32 + 1,
        price: (i % 10_000) as f64 / 100.0,
        express: i % 3 == 0,
        note: (i % 4 == 0).then(|| "leave at the door".to_string()),
        tags: vec!["web".into(), format!("region-{}", i % 7)],
    }
}

/// Decode every payload `rounds` times with `d`; the best round's records/s.
fn measure<D: Deserializer>(d: &D, payloads: &[Vec<u8>], rounds: usize) -> (f64, Duration) {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for p in payloads {
            black_box(
                d.deserialize("orders", Some(black_box(p)))
                    .expect("decodes"),
            );
        }
        best = best.min(start.elapsed());
    }
    (payloads.len() as f64 / best.as_secs_f64(), best)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: i64 = args.next().map_or(200_000, |a| a.parse().expect("records"));
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("rounds"));

    let registry = SchemaRegistry::new(RegistryConfig::new(["http://127.0.0.1:1"])).unwrap();
    registry.preload(RegisteredSchema {
        id: 1,
        schema_type: SchemaType::Avro,
        schema: SCHEMA.into(),
        references: vec![],
    });
    let schema = Schema::parse_str(SCHEMA).unwrap();
    let writer = GenericDatumWriter::builder(&schema).build().unwrap();
    let orders: Vec<Order> = (0..n).map(order).collect();
    let avro: Vec<Vec<u8>> = orders
        .iter()
        .map(|o| frame(1, &writer.write_ser_to_vec(o).unwrap()))
        .collect();
    let json: Vec<Vec<u8>> = orders
        .iter()
        .map(|o| serde_json::to_vec(o).unwrap())
        .collect();
    let typed = Avro::<Order>::new(&registry);
    assert_eq!(typed.decode(Some(&avro[4])).unwrap(), orders[4]);
    let bytes = |v: &[Vec<u8>]| v.iter().map(Vec::len).sum::<usize>() as f64 / v.len() as f64;
    println!(
        "{n} orders, best of {rounds} rounds, one thread; mean size: Avro {:.1} B (with the 5-byte header), JSON {:.1} B",
        bytes(&avro),
        bytes(&json)
    );
    let direct = Avro::<NamedOrder>::new(&registry).direct();
    assert_eq!(direct.decode(Some(&avro[4])).unwrap().id, 4);
    let rows = [
        ("Avro -> Order (serde)", measure(&typed, &avro, rounds)),
        ("Avro -> Order (direct)", measure(&direct, &avro, rounds)),
        (
            "Avro -> serde_json::Value",
            measure(&AvroJson::new(&registry), &avro, rounds),
        ),
        (
            "JSON -> Order (runtime Json<T>)",
            measure(&Json::<Order>::new(), &json, rounds),
        ),
    ];
    for (name, (rate, best)) in rows {
        println!(
            "{name:<34} {:>12.0} records/s  ({:.1} ns/record, round {best:.2?})",
            rate,
            1e9 / rate
        );
    }
}
