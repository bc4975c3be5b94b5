//! Model-based tests: random operation sequences run against the sled engine
//! and against [`MemStore`], and must give the same answers.

use proptest::prelude::*;

use crate::*;

#[derive(Debug, Clone)]
enum Op {
    Get(Vec<u8>),
    Scan(Vec<u8>, Vec<u8>, usize),
    Commit(Txn),
}

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![0u8, b'a', b'b', b'/', 0xff]),
        0..4,
    )
}

fn op() -> impl Strategy<Value = Op> {
    let cond = prop_oneof![
        small_key().prop_map(Condition::Absent),
        small_key().prop_map(Condition::Present),
        (small_key(), small_key()).prop_map(|(k, v)| Condition::Equals(k, v)),
    ];
    let mutation = prop_oneof![
        (small_key(), small_key()).prop_map(|(k, v)| Mutation::Put(k, v)),
        small_key().prop_map(Mutation::Delete),
    ];
    let txn = (
        prop::collection::vec(cond, 0..2),
        prop::collection::vec(mutation, 1..4),
    )
        .prop_map(|(conditions, mutations)| Txn {
            conditions,
            mutations,
        });
    prop_oneof![
        small_key().prop_map(Op::Get),
        (small_key(), small_key(), 0usize..6).prop_map(|(a, b, n)| Op::Scan(a, b, n)),
        txn.prop_map(Op::Commit),
    ]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn sled_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let sled = SledStore::open(dir.path()).unwrap();
        let model = MemStore::new();
        rt().block_on(async {
            for op in ops {
                match op {
                    Op::Get(k) => prop_assert_eq!(sled.get(&k).await.unwrap(), model.get(&k).await.unwrap()),
                    Op::Scan(a, b, n) => prop_assert_eq!(
                        sled.scan(&a, &b, n).await.unwrap(),
                        model.scan(&a, &b, n).await.unwrap()
                    ),
                    Op::Commit(t) => {
                        let x = sled.commit(t.clone()).await.map_err(|e| e.to_string());
                        let y = model.commit(t).await.map_err(|e| e.to_string());
                        prop_assert_eq!(x, y);
                    }
                }
            }
            Ok(())
        })?;
    }
}

#[test]
fn durable_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.commit(Txn::new().put(b"k".to_vec(), b"v".to_vec()))
                .await
                .unwrap();
        }
        // sled's background threads release the directory lock shortly after
        // the handle is dropped, so the reopen may have to wait for them.
        let mut tries = 0;
        let s = loop {
            match SledStore::open(dir.path()) {
                Ok(s) => break s,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("reopen failed: {e}"),
            }
        };
        assert_eq!(s.get(b"k").await.unwrap(), Some(b"v".to_vec()));
    });
}

#[test]
fn leases_exclude_other_holders_until_expiry() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let long = std::time::Duration::from_secs(60);
        assert!(s.acquire_lease("q", "a", long).await.unwrap());
        assert!(!s.acquire_lease("q", "b", long).await.unwrap());
        assert!(s.acquire_lease("q", "a", long).await.unwrap());
        s.release_lease("q", "a").await.unwrap();
        assert!(s
            .acquire_lease("q", "b", std::time::Duration::from_millis(1))
            .await
            .unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(s.acquire_lease("q", "a", long).await.unwrap());
    });
}

#[test]
fn prefix_end_bounds() {
    assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
    assert_eq!(prefix_end(b"\xff\xff"), None);
}

#[test]
fn concurrent_commits_and_reads_complete() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..20u32 {
                    let k = format!("k{i}/{j}").into_bytes();
                    s.commit(
                        Txn::new()
                            .require_absent(k.clone())
                            .put(k.clone(), b"v".to_vec()),
                    )
                    .await
                    .unwrap();
                    assert!(s.get(&k).await.unwrap().is_some());
                    let _ = s.scan(b"k", b"l", 10).await.unwrap();
                }
            }));
        }
        let all = futures_join(tasks);
        tokio::time::timeout(std::time::Duration::from_secs(60), all)
            .await
            .expect("commits finished without deadlock");
        assert_eq!(s.scan(b"k", b"l", 10_000).await.unwrap().len(), 64 * 20);
    });
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.unwrap();
    }
}
