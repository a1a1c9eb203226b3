use super::*;

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

fn rules(yaml: &str) -> Vec<RelabelConfig> {
    serde_norway::from_str(yaml).unwrap()
}

fn run(input: &[(&str, &str)], yaml: &str) -> Option<Labels> {
    process(&ls(input), &rules(yaml))
}

#[test]
fn defaults_are_prometheus_defaults() {
    let r = &rules("- target_label: x")[0];
    assert_eq!(r.action, Action::Replace);
    assert_eq!(r.separator, ";");
    assert_eq!(r.regex.as_str(), "(.*)");
    assert_eq!(r.replacement, "$1");
}

#[test]
fn replace_joins_sources_and_expands_groups() {
    let out = run(
        &[("a", "foo"), ("b", "bar")],
        "- source_labels: [a, b]\n  regex: 'f(.*);(.*)r'\n  target_label: c\n  replacement: '${1}-$2'",
    );
    assert_eq!(out, Some(ls(&[("a", "foo"), ("b", "bar"), ("c", "oo-ba")])));
}

#[test]
fn replace_without_match_changes_nothing() {
    let out = run(
        &[("a", "foo")],
        "- source_labels: [a]\n  regex: bar\n  target_label: c",
    );
    assert_eq!(out, Some(ls(&[("a", "foo")])));
}

#[test]
fn regex_is_anchored_at_both_ends() {
    let out = run(
        &[("a", "xfoox")],
        "- source_labels: [a]\n  regex: foo\n  action: keep",
    );
    assert_eq!(out, None);
    let out = run(
        &[("a", "foo")],
        "- source_labels: [a]\n  regex: foo\n  action: keep",
    );
    assert!(out.is_some());
}

#[test]
fn replace_to_empty_deletes_the_target() {
    let out = run(
        &[("a", "foo"), ("c", "x")],
        "- source_labels: [a]\n  regex: foo\n  target_label: c\n  replacement: ''",
    );
    assert_eq!(out, Some(ls(&[("a", "foo")])));
}

#[test]
fn replace_target_label_may_use_groups() {
    let out = run(
        &[("a", "some-name-value")],
        "- source_labels: [a]\n  regex: 'some-([^-]+)-([^,]+)'\n  target_label: '${1}'\n  replacement: '${2}'",
    );
    assert_eq!(
        out,
        Some(ls(&[("a", "some-name-value"), ("name", "value")]))
    );
}

#[test]
fn replace_fast_path_sets_literal_on_empty_input() {
    let out = run(
        &[("a", "x")],
        "- source_labels: [missing]\n  target_label: b\n  replacement: lit",
    );
    assert_eq!(out, Some(ls(&[("a", "x"), ("b", "lit")])));
}

#[test]
fn go_expand_semantics() {
    let re = Regex::new("(?P<first>a+)(b+)").unwrap();
    assert_eq!(
        re.expand("$1|$2|$first|${first}x|$$|$3", "aabb").unwrap(),
        "aa|bb|aa|aax|$|"
    );
    // `$1x` names group "1x", which does not exist.
    assert_eq!(re.expand("$1x", "aabb").unwrap(), "");
    // Leading zeros make a name, not a number.
    assert_eq!(re.expand("$01", "aabb").unwrap(), "");
    // Malformed references stay as text.
    assert_eq!(re.expand("a$-b${1", "aabb").unwrap(), "a$-b${1");
    assert!(re.expand("$1", "zz").is_none());
}

#[test]
fn keep_and_drop() {
    let keep = "- source_labels: [a]\n  regex: 'f.*'\n  action: keep";
    assert!(run(&[("a", "foo")], keep).is_some());
    assert!(run(&[("a", "bar")], keep).is_none());
    let drop = "- source_labels: [a]\n  regex: 'f.*'\n  action: drop";
    assert!(run(&[("a", "foo")], drop).is_none());
    assert!(run(&[("a", "bar")], drop).is_some());
    // A missing label is the empty string, which `.*` matches.
    assert!(
        run(
            &[("b", "x")],
            "- source_labels: [a]\n  regex: '.*'\n  action: drop"
        )
        .is_none()
    );
}

#[test]
fn keepequal_and_dropequal_compare_with_target() {
    let ke = "- source_labels: [a]\n  target_label: b\n  action: keepequal";
    assert!(run(&[("a", "x"), ("b", "x")], ke).is_some());
    assert!(run(&[("a", "x"), ("b", "y")], ke).is_none());
    let de = "- source_labels: [a]\n  target_label: b\n  action: dropequal";
    assert!(run(&[("a", "x"), ("b", "x")], de).is_none());
    assert!(run(&[("a", "x"), ("b", "y")], de).is_some());
}

#[test]
fn hashmod_matches_prometheus() {
    // Values from Prometheus' relabel tests.
    assert_eq!(hashmod("baz", 1000), 976);
    assert_eq!(hashmod("foo\nbar", 1000), 734);
    let out = run(
        &[("a", "foo"), ("c", "baz")],
        "- source_labels: [c]\n  target_label: d\n  action: hashmod\n  modulus: 1000",
    );
    assert_eq!(out.unwrap().get("d"), Some("976"));
}

#[test]
fn labelmap_copies_matching_names() {
    let out = run(
        &[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_x", "y"),
            ("job", "j"),
        ],
        "- regex: '__meta_kubernetes_pod_label_(.+)'\n  action: labelmap",
    );
    assert_eq!(
        out,
        Some(ls(&[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_x", "y"),
            ("app", "web"),
            ("job", "j")
        ]))
    );
}

#[test]
fn labelmap_later_labels_win_in_builder_order() {
    // Both map to "x": base labels are walked sorted, so b's value wins.
    let out = run(
        &[("a_x", "1"), ("b_x", "2")],
        "- regex: '.*_(x)'\n  action: labelmap",
    );
    assert_eq!(out.unwrap().get("x"), Some("2"));
}

#[test]
fn labeldrop_and_labelkeep() {
    let input = [("a", "1"), ("b1", "2"), ("b2", "3")];
    assert_eq!(
        run(&input, "- regex: 'b.*'\n  action: labeldrop"),
        Some(ls(&[("a", "1")]))
    );
    assert_eq!(
        run(&input, "- regex: 'b.*'\n  action: labelkeep"),
        Some(ls(&[("b1", "2"), ("b2", "3")]))
    );
    // Dropping everything leaves nothing to keep.
    assert_eq!(run(&input, "- regex: '.*'\n  action: labeldrop"), None);
}

#[test]
fn lowercase_and_uppercase() {
    let out = run(
        &[("a", "FoO")],
        "- source_labels: [a]\n  target_label: lo\n  action: lowercase\n- source_labels: [a]\n  target_label: up\n  action: uppercase",
    );
    assert_eq!(out, Some(ls(&[("a", "FoO"), ("lo", "foo"), ("up", "FOO")])));
}

#[test]
fn action_names_are_case_insensitive() {
    assert_eq!(
        rules("- action: LabelDrop\n  regex: x")[0].action,
        Action::LabelDrop
    );
}

#[test]
fn invalid_rules_are_refused_with_prometheus_messages() {
    let err = |y: &str| {
        serde_norway::from_str::<Vec<RelabelConfig>>(y)
            .unwrap_err()
            .to_string()
    };
    assert!(err("- action: hashmod\n  target_label: x").contains("requires non-zero modulus"));
    assert!(err("- action: replace").contains("requires 'target_label' value"));
    assert!(
        err("- action: lowercase\n  target_label: x\n  replacement: y")
            .contains("'replacement' can not be set")
    );
    assert!(
        err("- action: labeldrop\n  regex: x\n  source_labels: [a]")
            .contains("requires only 'regex'")
    );
    assert!(
        err("- action: keepequal\n  target_label: x\n  regex: y")
            .contains("requires only 'source_labels'")
    );
    assert!(err("- action: explode").contains("unknown relabel action \"explode\""));
    let e = err("- action: keep\n  regex: '(unclosed'");
    assert!(
        e.contains("invalid regular expression \"(unclosed\"") && e.contains("line 2"),
        "{e}"
    );
    assert!(err("- action: keep\n  regx: a").contains("unknown field `regx`"));
}

#[test]
fn rules_apply_in_order_and_stop_at_drop() {
    let out = run(
        &[("a", "1")],
        "- source_labels: [a]\n  target_label: b\n- source_labels: [b]\n  regex: '1'\n  action: drop\n- target_label: never\n  replacement: x",
    );
    assert_eq!(out, None);
}
