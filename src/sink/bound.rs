//! Alerts that fit their receivers. A window read by tens of thousands of principals makes an
//! alert of megabytes: PagerDuty refuses events over 512 KB (a refused `resolve` leaves the
//! incident open for good), Kafka's default `message.max.bytes` is 1 MB, and a page or a chat
//! message listing 20 000 names helps no one. Network sinks therefore list at most
//! `max_principals` principals per alert ([`DEFAULT_MAX_PRINCIPALS`] unless the sink says
//! otherwise) and say how many were left out (`principals_truncated`); each sink with a
//! documented size limit then shrinks the list further until its body fits ([`fit`]). The
//! JSON-lines output, the `jsonl` sink and `exposure report` keep the whole list.

use super::{Sink, SinkFuture};
use crate::detect::Alert;
use std::borrow::Cow;

/// Principals listed per alert by network sinks unless `max_principals` says otherwise: at
/// ~40 bytes a name in PagerDuty's `custom_details` and ~130 in the alert JSON of a webhook,
/// 1000 stays far below PagerDuty's 512 KB and Kafka's 1 MB, and above any real window's
/// list a responder reads.
pub const DEFAULT_MAX_PRINCIPALS: usize = 1000;

/// Where a receiver that was given part of the list finds all of it.
pub const ALL_PRINCIPALS: &str = "the alert's JSON-lines output (replay --out, a jsonl sink) or `exposure report` lists every principal";

/// `alert` with at most `max` principals listed (the first `max`, in the alert's order) and
/// the number left out added to `principals_truncated`; the counts (`novel_principals`,
/// `reads`) stay those of the whole window.
pub fn limit_principals(alert: &Alert, max: usize) -> Cow<'_, Alert> {
    if alert.principals.len() <= max {
        return Cow::Borrowed(alert);
    }
    let mut limited = alert.clone();
    limited.principals.truncate(max);
    limited.principals_truncated += alert.principals.len() - max;
    Cow::Owned(limited)
}

/// The body `encode` makes of `alert`, with its principals halved until it is at most
/// `limit` bytes; `None` when it does not fit even with none listed.
pub fn fit(alert: &Alert, limit: usize, encode: impl Fn(&Alert) -> Vec<u8>) -> Option<Vec<u8>> {
    let mut listed = alert.principals.len();
    loop {
        let body = encode(&limit_principals(alert, listed));
        if body.len() <= limit {
            return Some(body);
        }
        if listed == 0 {
            return None;
        }
        listed /= 2;
    }
}

/// A sink that lists at most `max` principals per alert before its inner sink sees it.
pub struct Bounded {
    pub inner: Box<dyn Sink>,
    pub max: usize,
}

impl Sink for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let limited = limit_principals(alert, self.max);
            self.inner.deliver(&limited).await
        })
    }

    fn tick(&mut self) -> SinkFuture<'_> {
        self.inner.tick()
    }

    fn lost_state(&self) -> bool {
        self.inner.lost_state()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::{AlertStatus, PrincipalActivity};

    /// A window alert of `principals` principals with names of `name_len` characters.
    pub(crate) fn wide_alert(status: AlertStatus, principals: usize, name_len: usize) -> Alert {
        let [mut alert, _] = crate::sink::test_alerts();
        alert.status = status;
        alert.principals = (0..principals)
            .map(|i| PrincipalActivity {
                principal: format!("{i:0>width$}@corp.example", width = name_len),
                first_read: alert.window_start,
                last_read: alert.window_end,
                reads: 1,
            })
            .collect();
        alert.novel_principals = principals;
        alert
    }

    #[test]
    fn a_long_list_is_cut_and_says_how_many_are_left_out() {
        let alert = wide_alert(AlertStatus::Open, 20_000, 8);
        let limited = limit_principals(&alert, 1000);
        assert_eq!(limited.principals.len(), 1000);
        assert_eq!(limited.principals_truncated, 19_000);
        assert_eq!(
            limited.novel_principals, 20_000,
            "the count stays the window's"
        );
        let json = limited.to_json();
        assert!(json.contains("\"principals_truncated\":19000"), "{json}");
        // A short list is left as it is, and the field is not written.
        let short = wide_alert(AlertStatus::Open, 3, 8);
        assert!(matches!(limit_principals(&short, 1000), Cow::Borrowed(_)));
        assert!(!short.to_json().contains("principals_truncated"));
    }

    #[test]
    fn a_body_is_shrunk_until_it_fits() {
        let alert = wide_alert(AlertStatus::Open, 5000, 40);
        let encode = |a: &Alert| a.to_json().into_bytes();
        let body = fit(&alert, 100_000, encode).unwrap();
        assert!(body.len() <= 100_000);
        let fitted: Alert = serde_json::from_slice(&body).unwrap();
        assert!(fitted.principals.len() < 5000 && !fitted.principals.is_empty());
        assert_eq!(
            fitted.principals.len() + fitted.principals_truncated,
            5000,
            "every principal is listed or counted"
        );
        assert!(fit(&alert, 10, encode).is_none());
    }
}
