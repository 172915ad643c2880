//! The report's smallest mode end to end, with the default features (no
//! RocksDB, no SlateDB): the binary writes report.md, results.json and the
//! SVG charts, with every section.

use std::process::Command;

#[test]
fn tiny_report_writes_markdown_json_and_charts() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_riverbed-bench"))
        .args(["report", "--tiny", "--date", "test-run", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "report exited with {status}");
    let dir = out.path().join("test-run");

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for section in [
        "# Riverbed benchmark report",
        "## State store vs RocksDB and SlateDB",
        "### Engines and settings",
        "| random_fill | keys/s |",
        "| point_read_hot | gets/s |",
        "| range_scan | entries/s |",
        "| delete_range |",
        "## Goals",
        "## Nexmark",
        "| q0 |",
        "| q23 | — |",
        "## Resource use",
        "## Store cost vs state size",
        "## Checkpoints and recovery",
        "| q9 | 2000 |",
        "What 1 s checkpoints cost",
        "## Micro-benchmarks",
        "RocksDB**: not compiled in",
    ] {
        assert!(md.contains(section), "report.md lacks {section:?}:\n{md}");
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["config"]["mode"], "tiny");
    assert!(!json["store_samples"].as_array().unwrap().is_empty());
    assert_eq!(json["nexmark"].as_array().unwrap().len(), 23);
    assert!(json["nexmark"][0]["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(json["scale"].as_array().unwrap().len(), 2);
    let cps = &json["checkpoints"];
    assert_eq!(cps["sizes"].as_array().unwrap().len(), 2, "{cps}");
    assert_eq!(cps["intervals"].as_array().unwrap().len(), 23, "{cps}");
    assert!(cps["intervals"][0]["end_only"].as_f64().unwrap() > 0.0);

    for chart in [
        "store_comparison.svg",
        "nexmark_throughput_per_core.svg",
        "nexmark_resources.svg",
        "store_cost_vs_state_size.svg",
    ] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<rect"),
            "{chart} is not a chart"
        );
    }
}
