//! Deliberate differences between native and viewos runs, and the diff that
//! reports everything else.

use crate::outcome::Outcome;

/// A field that is expected to differ under viewos, with the value viewos
/// must produce and the reason, which the case has to state.
#[derive(Clone, Debug)]
pub struct Difference {
    pub key: String,
    pub viewos: String,
    pub why: String,
}

/// Every field where the runs disagree (beyond the declared differences), or
/// where a declared difference does not have its promised viewos value.
pub fn compare(native: &Outcome, viewos: &Outcome, declared: &[Difference]) -> Vec<String> {
    let mut keys: Vec<&str> = native.keys().collect();
    keys.extend(viewos.keys().filter(|k| native.get(k).is_none()));
    let mut problems = Vec::new();
    for key in keys {
        let (n, v) = (native.get(key), viewos.get(key));
        match declared.iter().find(|d| d.key == key) {
            Some(d) if v == Some(d.viewos.as_str()) => {}
            Some(d) => problems.push(format!(
                "  {key}: declared to differ ({}), viewos should give {:?}\n    native: {}\n    viewos: {}",
                d.why,
                d.viewos,
                show(n),
                show(v)
            )),
            None if n == v => {}
            None => problems.push(format!("  {key}:\n    native: {}\n    viewos: {}", show(n), show(v))),
        }
    }
    problems
}

fn show(value: Option<&str>) -> String {
    value.map_or_else(|| "(absent)".to_string(), |v| format!("{v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(fields: &[(&str, &str)]) -> Outcome {
        let mut outcome = Outcome::default();
        for (k, v) in fields {
            outcome.push(k, *v);
        }
        outcome
    }

    #[test]
    fn declared_difference_must_have_its_promised_value() {
        let native = outcome(&[("tracer", "zero"), ("x", "1")]);
        let declared = [Difference {
            key: "tracer".into(),
            viewos: "nonzero".into(),
            why: "ptrace".into(),
        }];
        assert!(
            compare(
                &native,
                &outcome(&[("tracer", "nonzero"), ("x", "1")]),
                &declared
            )
            .is_empty()
        );
        assert_eq!(
            compare(
                &native,
                &outcome(&[("tracer", "zero"), ("x", "1")]),
                &declared
            )
            .len(),
            1
        );
    }

    #[test]
    fn missing_and_extra_fields_are_reported() {
        let native = outcome(&[("a", "1"), ("b", "2")]);
        let problems = compare(&native, &outcome(&[("a", "1"), ("c", "3")]), &[]);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
