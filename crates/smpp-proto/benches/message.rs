//! Message layer throughput: GSM 7-bit encode/decode/pack and segmentation of a
//! 1,000-character text.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smpp_proto::message::gsm7::{self, Gsm7Alphabet};
use smpp_proto::message::receipt::DeliveryReceipt;
use smpp_proto::message::{segment_text, ucs2, ReferenceCounter, SegmentationPolicy};

fn gsm_text() -> String {
    let base = "The quick brown fox jumps over the lazy dog @ £5 {ok} €10! ";
    base.chars().cycle().take(1000).collect()
}

fn bench(c: &mut Criterion) {
    let text = gsm_text();
    let septets = Gsm7Alphabet::DEFAULT.encode(&text).unwrap();
    let packed = gsm7::pack(&septets, 0, true);
    let ucs2_text: String = "Привет, мир! 日本語 😀 "
        .chars()
        .cycle()
        .take(1000)
        .collect();

    let mut g = c.benchmark_group("gsm7");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("encode_1000_chars", |b| {
        b.iter(|| Gsm7Alphabet::DEFAULT.encode(black_box(&text)).unwrap())
    });
    g.throughput(Throughput::Bytes(septets.len() as u64));
    g.bench_function("decode_1000_chars", |b| {
        b.iter(|| Gsm7Alphabet::DEFAULT.decode(black_box(&septets)))
    });
    g.bench_function("pack_1000_chars", |b| {
        b.iter(|| gsm7::pack(black_box(&septets), 1, true))
    });
    g.throughput(Throughput::Bytes(packed.len() as u64));
    g.bench_function("unpack_1000_chars", |b| {
        b.iter(|| gsm7::unpack(black_box(&packed), 0, None))
    });
    g.finish();

    let policy = SegmentationPolicy::default();
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("gsm7_1000_chars", |b| {
        let mut refs = ReferenceCounter::new(0);
        b.iter(|| segment_text(black_box(&text), &policy, &mut refs).unwrap())
    });
    g.throughput(Throughput::Bytes(ucs2_text.len() as u64));
    g.bench_function("ucs2_1000_chars", |b| {
        let mut refs = ReferenceCounter::new(0);
        b.iter(|| segment_text(black_box(&ucs2_text), &policy, &mut refs).unwrap())
    });
    let ucs2_bytes = ucs2::encode(&ucs2_text);
    g.throughput(Throughput::Bytes(ucs2_bytes.len() as u64));
    g.bench_function("ucs2_decode_1000_chars", |b| {
        b.iter(|| ucs2::decode(black_box(&ucs2_bytes)))
    });
    g.finish();

    let receipt = "id:1234567890 sub:001 dlvrd:001 submit date:2601171030 done date:2601171031 stat:DELIVRD err:000 text:Hello world";
    let mut g = c.benchmark_group("receipt");
    g.throughput(Throughput::Bytes(receipt.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| DeliveryReceipt::parse(black_box(receipt)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
