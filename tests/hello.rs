//! `examples/hello` in real workerd, over real HTTP.

use edgeway::testing::Worker;

fn hello() -> Worker {
    Worker::start(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/hello/wrangler.toml"
    ))
    .expect("hello worker starts")
}

#[test]
fn serves_routes_and_problem_json_then_leaves_no_process_behind() {
    let worker = hello();

    // Compiled-in text is decoded on its first answer and reused after: every
    // answer is the same.
    for _ in 0..3 {
        for (path, text) in [("/", "Hello from edgeway!"), ("/healthz", "ok")] {
            let res = worker.get(path).unwrap();
            assert_eq!(res.status, 200);
            assert_eq!(res.text(), text);
            assert_eq!(res.header("content-type"), Some("text/plain;charset=UTF-8"));
        }
    }

    // One header block for every JSON answer, kept from its second answer on:
    // bodies of other lengths still arrive whole, with their own headers.
    for _ in 0..3 {
        for (path, name) in [
            ("/hello/w%C3%B6rld?greeting=hi", "wörld"),
            (
                "/hello/a-much-longer-name-than-the-first?greeting=hi",
                "a-much-longer-name-than-the-first",
            ),
        ] {
            let res = worker.get(path).unwrap();
            assert_eq!(res.status, 200);
            assert_eq!(res.header("content-type"), Some("application/json"));
            assert_eq!(
                res.json(),
                serde_json::json!({"name": name, "greeting": "hi"})
            );
        }
    }

    let doc = worker.get("/no/such/route").unwrap().assert_problem(404);
    assert_eq!(doc["type"], "urn:edgeway:problem:not-found");

    let res = worker.send("POST", "/", &[], Vec::new()).unwrap();
    res.assert_problem(405);
    assert_eq!(res.header("allow"), Some("GET, HEAD, OPTIONS"));

    let pgid = worker.process_group();
    let dir = worker.dir().to_owned();
    drop(worker);

    // Nothing of that process group survives, and no process still refers to the
    // worker's private directory (wrangler and workerd both do while alive).
    assert_ne!(
        unsafe { libc::kill(-pgid, 0) },
        0,
        "process group {pgid} still alive"
    );
    let needle = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(
            !cmdline.contains(&needle),
            "orphan process {:?}: {cmdline}",
            entry.file_name()
        );
    }
}
