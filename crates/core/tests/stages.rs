//! The stage order inside mxprobe-core: data, then judgement, then report. A module may use
//! modules of its own stage or of an earlier one, never of a later one, and the top-level
//! modules import one another without a cycle. Read from the source: every `crate::<module>`
//! path outside comments and test modules is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The stages, in order, and the top-level modules of each.
const STAGES: &[(&str, &[&str])] = &[
    (
        "data",
        &[
            "domain", "tagvalue", "dns", "mtasts", "tlsrpt", "smtp", "tls", "dane", "facts",
            "limits", "csv_cell",
        ],
    ),
    (
        "judge",
        &[
            "finding", "evaluate", "gate", "lint", "generate", "alert", "changes", "result",
        ],
    ),
    (
        "report",
        &[
            "render",
            "output",
            "stream",
            "ci",
            "synthetic_report",
            "html",
        ],
    ),
];

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// The code of a file without its test module and without comments.
fn code(source: &str) -> String {
    let mut out = String::new();
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let line = line.split(" // ").next().unwrap_or_default();
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level modules named by `crate::<module>` paths in `code`.
fn uses(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .filter(|(at, _)| {
            // `mxprobe_core::…` and the like are other crates' paths.
            !code[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// module → module it uses → the files that use it.
fn graph(src: &Path) -> Graph {
    let mut all = Vec::new();
    files(src, &mut all);
    let mut graph = Graph::new();
    for path in all {
        let relative = path.strip_prefix(src).expect("under src");
        let first = relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" {
            continue;
        }
        let source = fs::read_to_string(&path).expect("readable source file");
        let edges = graph.entry(module.clone()).or_default();
        for used in uses(&code(&source)) {
            if used != module {
                edges
                    .entry(used)
                    .or_default()
                    .insert(relative.display().to_string());
            }
        }
    }
    graph
}

/// Everything wrong with `graph` under `stages`: modules in no stage, arrows to a later
/// stage, and cycles.
fn problems(graph: &Graph, stages: &[(&str, &[&str])]) -> Vec<String> {
    let stage_of = |module: &str| {
        stages
            .iter()
            .position(|(_, modules)| modules.contains(&module))
    };
    let mut out = Vec::new();
    for (module, edges) in graph {
        let Some(from) = stage_of(module) else {
            out.push(format!("module {module} is in no stage: add it to STAGES"));
            continue;
        };
        for (used, files) in edges {
            // Names that are not modules of this crate (a macro, say) are no edge.
            if !graph.contains_key(used) {
                continue;
            }
            if let Some(to) = stage_of(used)
                && to > from
            {
                out.push(format!(
                    "{module} ({}) uses {used} ({}), a later stage, in {}",
                    stages[from].0,
                    stages[to].0,
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    out.extend(
        cycles(graph)
            .into_iter()
            .map(|cycle| format!("import cycle: {}", cycle.join(" → "))),
    );
    out
}

/// One cycle through each group of modules that reach one another, as a path back to its
/// start.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let targets = |m: &str| -> Vec<&str> {
        graph.get(m).map_or(Vec::new(), |edges| {
            edges
                .keys()
                .filter(|t| graph.contains_key(*t))
                .map(String::as_str)
                .collect()
        })
    };
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for start in graph.keys() {
        if reported.contains(start) {
            continue;
        }
        // A shortest path from `start` back to itself, breadth first.
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.as_str()]);
        let mut closed = None;
        while let Some(m) = queue.pop_front() {
            for t in targets(m) {
                if t == start {
                    closed = Some(m);
                    break;
                }
                if !previous.contains_key(t) {
                    previous.insert(t, m);
                    queue.push_back(t);
                }
            }
            if closed.is_some() {
                break;
            }
        }
        let Some(mut at) = closed else { continue };
        let mut path = Vec::new();
        loop {
            path.push(at.to_owned());
            if at == start {
                break;
            }
            at = previous[at];
        }
        path.reverse();
        path.push(start.clone());
        reported.extend(path.iter().cloned());
        found.push(path);
    }
    found
}

#[test]
fn no_module_uses_a_later_stage_and_there_is_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(
        graph.contains_key("evaluate") && graph["evaluate"].contains_key("finding"),
        "the source was not read"
    );
    let problems = problems(&graph, STAGES);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_finds_an_arrow_back_up_a_cycle_and_a_module_in_no_stage() {
    let source = "use crate::b::X;\n// use crate::c;\nfn f() { crate::c::g(); other_crate::d::h(); }\n\
                  #[cfg(test)]\nmod tests {\n    use crate::d;\n}\n";
    assert_eq!(
        uses(&code(source)),
        BTreeSet::from(["b".to_owned(), "c".to_owned()])
    );

    let edge = |from: &str, to: &[&str]| {
        let edges = to
            .iter()
            .map(|t| ((*t).to_owned(), BTreeSet::from([format!("{from}.rs")])))
            .collect();
        (from.to_owned(), edges)
    };
    let stages: &[(&str, &[&str])] = &[("data", &["a", "b"]), ("report", &["c"])];
    let graph: Graph = [edge("a", &["b", "c"]), edge("b", &["a"]), edge("c", &[])].into();
    assert_eq!(
        problems(&graph, stages),
        [
            "a (data) uses c (report), a later stage, in a.rs",
            "import cycle: a → b → a",
        ]
    );
    let graph: Graph = [edge("a", &[]), edge("z", &["a"])].into();
    assert_eq!(
        problems(&graph, stages),
        ["module z is in no stage: add it to STAGES"]
    );
}
