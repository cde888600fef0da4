//! The SQL GRANT/REVOKE reader (pgaudit ROLE lines, Snowflake query history): any text gives
//! permission changes or `None`, and splits into statements — never a panic.
#![no_main]
use exposure::format::grant_sql::{Fold, GrantContext, parse_grant, split_statements, starts_with_command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    for fold in [Fold::Lower, Fold::Upper, Fold::Keep] {
        let context = GrantContext {
            ts: 0,
            actor: "fuzz",
            default_schema: Some("public"),
            object_prefix: Some("db"),
            fold,
        };
        for statement in split_statements(sql) {
            let _ = starts_with_command(statement, "GRANT");
            let _ = parse_grant(statement, &context);
        }
    }
});
