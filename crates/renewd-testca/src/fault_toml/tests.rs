use std::time::Duration;

use crate::faults::{Action, Endpoint, EndpointMatch, Fault, FaultBody, FaultPlan, Mismatch, When};

const EVERY_ACTION: &str = r#"
seed = 7

[[rule]]
endpoint = "finalize"
action = "status"
status = 504
body = "html"
when = "after"
times = 1

[[rule]]
endpoint = "new_order"
action = "status"
status = 503
problem_type = "serverInternal"
detail = "down for maintenance"
retry_after_secs = 30
probability = 0.25

[[rule]]
endpoint = "directory"
action = "delay"
delay_ms = 1500

[[rule]]
endpoint = "order"
action = "hang"
times = 2

[[rule]]
endpoint = "certificate"
action = "drop"
when = "after"

[[rule]]
endpoint = "any"
action = "rate_limited"
retry_after_secs = 60
times = 1

[[rule]]
endpoint = "finalize"
action = "processing"
processing_ms = 2000
retry_after_secs = 1

[[rule]]
endpoint = "any"
action = "bad_nonce"
probability = 0.5

[[rule]]
endpoint = "renewal_info"
action = "status"
status = 200
body = "garbage"

[[rule]]
endpoint = "order"
action = "invalid_order"
problem_type = "serverInternal"
detail = "issuance failed"
times = 1

[[rule]]
endpoint = "certificate"
action = "wrong_certificate"
mismatch = "key"
times = 1
"#;

#[test]
fn every_action_parses_into_its_fault() {
    let plan = FaultPlan::from_toml_str(EVERY_ACTION).expect("parses");
    assert_eq!(plan.seed, 7);
    assert_eq!(plan.rules.len(), 11);
    assert_eq!(
        plan.rules[0].fault,
        Fault::status(504).html().after_processing().times(1)
    );
    assert_eq!(
        plan.rules[0].endpoint,
        EndpointMatch::Only(Endpoint::Finalize)
    );
    assert_eq!(
        plan.rules[1].fault,
        Fault::status(503)
            .problem("serverInternal", "down for maintenance")
            .retry_after(Duration::from_secs(30))
            .probability(0.25)
    );
    assert_eq!(
        plan.rules[2].fault,
        Fault::delay(Duration::from_millis(1500))
    );
    assert_eq!(plan.rules[3].fault, Fault::hang().times(2));
    assert_eq!(
        plan.rules[4].fault,
        Fault::drop_connection().after_processing()
    );
    assert_eq!(plan.rules[5].endpoint, EndpointMatch::Any);
    assert_eq!(
        plan.rules[5].fault,
        Fault::rate_limited(Duration::from_secs(60)).times(1)
    );
    assert_eq!(
        plan.rules[6].fault,
        Fault::processing_for(Duration::from_secs(2)).retry_after(Duration::from_secs(1))
    );
    assert_eq!(plan.rules[7].fault, Fault::bad_nonce().probability(0.5));
    assert_eq!(plan.rules[8].fault, Fault::status(200).garbage());
    assert_eq!(
        plan.rules[9].fault,
        Fault::invalid_order("serverInternal", "issuance failed").times(1)
    );
    assert_eq!(
        plan.rules[10].fault,
        Fault::wrong_certificate(Mismatch::Key).times(1)
    );
}

#[test]
fn a_plan_survives_toml_and_json_round_trips() {
    let plan = FaultPlan::from_toml_str(EVERY_ACTION).expect("parses");
    let toml_text = toml::to_string(&plan).expect("serialises");
    assert_eq!(
        FaultPlan::from_toml_str(&toml_text).expect("reparses"),
        plan
    );
    let json_text = serde_json::to_string(&plan).expect("serialises");
    assert_eq!(
        FaultPlan::from_json_str(&json_text).expect("reparses"),
        plan
    );
}

#[test]
fn status_bodies_default_by_status() {
    let plan = FaultPlan::from_toml_str(
        "[[rule]]\nendpoint = \"finalize\"\naction = \"status\"\nstatus = 502\n\n\
         [[rule]]\nendpoint = \"finalize\"\naction = \"status\"\nstatus = 400\n",
    )
    .expect("parses");
    assert!(matches!(
        plan.rules[0].fault.action,
        Action::Status {
            body: FaultBody::Html,
            ..
        }
    ));
    assert!(matches!(
        plan.rules[1].fault.action,
        Action::Status {
            body: FaultBody::Problem { .. },
            ..
        }
    ));
    assert_eq!(plan.rules[0].fault.when, When::Before);
}

fn error_of(text: &str) -> String {
    FaultPlan::from_toml_str(text)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn mistakes_are_refused_with_their_line() {
    let e = error_of("[[rule]]\nendpoint = \"finalize\"\naction = \"drop\"\nstatus = 504\n");
    assert!(e.contains("does not take `status`"), "{e}");
    assert!(e.contains("line 1"), "{e}");
    let e = error_of("[[rule]]\nendpoint = \"finalise\"\naction = \"drop\"\n");
    assert!(e.contains("unknown endpoint"), "{e}");
    let e =
        error_of("[[rule]]\nendpoint = \"order\"\naction = \"processing\"\nprocessing_ms = 5\n");
    assert!(e.contains("cannot apply to endpoint"), "{e}");
    let e = error_of("[[rule]]\nendpoint = \"order\"\naction = \"status\"\n");
    assert!(e.contains("needs `status`"), "{e}");
    let e = error_of("[[rule]]\nendpoint = \"order\"\naction = \"hang\"\nprobability = 1.5\n");
    assert!(e.contains("outside 0..=1"), "{e}");
    let e = error_of("[[rule]]\nendpoint = \"order\"\naction = \"hang\"\ntimes = 0\n");
    assert!(e.contains("never fires"), "{e}");
    let e = error_of("[[rule]]\nendpoint = \"order\"\naction = \"hang\"\ncolour = 1\n");
    assert!(e.contains("colour"), "{e}");
    let e = error_of("sede = 1\n");
    assert!(e.contains("sede"), "{e}");
    let e = error_of("[[rule]]\nendpoint = \"directory\"\naction = \"bad_nonce\"\n");
    assert!(e.contains("cannot apply"), "{e}");
    let e = error_of(
        "[[rule]]\nendpoint = \"finalize\"\naction = \"invalid_order\"\nproblem_type = \"caa\"\n",
    );
    assert!(e.contains("cannot apply"), "{e}");
    let e = error_of("[[rule]]\nendpoint = \"order\"\naction = \"invalid_order\"\n");
    assert!(e.contains("needs `problem_type`"), "{e}");
    let e = error_of("[[rule]]\nendpoint = \"certificate\"\naction = \"wrong_certificate\"\n");
    assert!(e.contains("needs `mismatch`"), "{e}");
    let e = error_of(
        "[[rule]]\nendpoint = \"order\"\naction = \"wrong_certificate\"\nmismatch = \"names\"\n",
    );
    assert!(e.contains("cannot apply"), "{e}");
    let e = error_of(
        "[[rule]]\nendpoint = \"certificate\"\naction = \"wrong_certificate\"\nmismatch = \"names\"\nwhen = \"after\"\n",
    );
    assert!(e.contains("does not take `when"), "{e}");
    let e = error_of(
        "[[rule]]\nendpoint = \"certificate\"\naction = \"wrong_certificate\"\nmismatch = \"serial\"\n",
    );
    assert!(e.contains("serial"), "{e}");
    let e =
        error_of("[[rule]]\nendpoint = \"certificate\"\naction = \"drop\"\nmismatch = \"key\"\n");
    assert!(e.contains("does not take `mismatch`"), "{e}");
}

#[test]
fn every_shipped_example_plan_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fault-plans");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fault-plans/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        let plan =
            FaultPlan::from_toml_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!plan.rules.is_empty(), "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 2);
}

#[test]
fn plans_built_in_code_are_checked_too() {
    let plan = FaultPlan::new().rule(Endpoint::Order, Fault::processing_for(Duration::ZERO));
    assert!(plan.validate().is_err());
    let plan = FaultPlan::new().rule(Endpoint::Finalize, Fault::status(99));
    assert!(plan.validate().is_err());
    let plan = FaultPlan::new().rule(Endpoint::Finalize, Fault::status(504).times(3));
    assert!(plan.validate().is_ok());
}
