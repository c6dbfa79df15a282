//! Per-lookup cost of edgeway's router against raw matchit, over all 130 GitHub API
//! paths, plus the one-off cost of building each table.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use edgeway::Method;
use edgeway_router_bench::{edgeway_service, matchit_router, paths};

fn lookup(c: &mut Criterion) {
    let paths = paths();
    let mut group = c.benchmark_group("lookup 130 GitHub paths");
    let router = matchit_router();
    group.bench_function("matchit", |b| {
        b.iter(|| {
            for path in black_box(&paths) {
                black_box(router.at(path).unwrap());
            }
        })
    });
    let service = edgeway_service();
    group.bench_function("edgeway", |b| {
        b.iter(|| {
            for path in black_box(&paths) {
                black_box(service.match_route(&Method::Get, path).unwrap());
            }
        })
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build 130-route table");
    group.bench_function("matchit", |b| b.iter(|| black_box(matchit_router())));
    group.bench_function("edgeway", |b| b.iter(|| black_box(edgeway_service())));
    group.finish();
}

criterion_group!(benches, lookup, build);
criterion_main!(benches);
