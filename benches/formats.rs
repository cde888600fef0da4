//! Criterion: parsing each vendor format (lines -> events), on synthetic records shaped like
//! the fixtures in tests/data/formats. Throughput is reported in records.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use exposure::format::Format;
use exposure::format::vendor::{RecordReader, VendorOptions};
use std::hint::black_box;

const RECORDS: usize = 20_000;

fn lines(format: Format) -> Vec<String> {
    (0..RECORDS)
        .map(|i| {
            let who = format!("user{}", i % 100);
            match format {
                Format::Pgaudit => format!(
                    "2026-03-18 10:{:02}:{:02}.{:03} UTC [{}] {who}@shop LOG:  AUDIT: SESSION,{i},1,READ,SELECT,TABLE,public.t{},\"SELECT a, b FROM t WHERE id = {i}\",<not logged>",
                    (i / 60) % 60, i % 60, i % 1000, 1000 + i % 300, i % 20
                ),
                Format::Cloudtrail => format!(
                    r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/Analyst/{who}","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::123456789012:role/Analyst"}}}}}},"eventTime":"2026-03-18T10:00:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","requestParameters":{{"bucketName":"b{}","key":"k/{i}.csv"}},"readOnly":true,"resources":[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/k"}}],"eventCategory":"Data"}}"#,
                    i % 60, i % 20
                ),
                Format::GcpAudit => format!(
                    r#"{{"protoPayload":{{"authenticationInfo":{{"principalEmail":"{who}@acme.example"}},"serviceName":"bigquery.googleapis.com","methodName":"google.cloud.bigquery.v2.TableDataService.List","resourceName":"projects/acme/datasets/hr/tables/t{}","metadata":{{"@type":"type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata","tableDataRead":{{"reason":"JOB"}}}}}},"timestamp":"2026-03-18T10:00:{:02}.123456Z","logName":"projects/acme/logs/cloudaudit.googleapis.com%2Fdata_access"}}"#,
                    i % 20, i % 60
                ),
                Format::Snowflake => format!(
                    r#"{{"QUERY_ID":"q{i}","QUERY_START_TIME":"2026-03-18 10:00:{:02}.000 +0000","USER_NAME":"{who}","BASE_OBJECTS_ACCESSED":[{{"objectDomain":"Table","objectName":"HR.PUBLIC.T{}","columns":[]}}]}}"#,
                    i % 60, i % 20
                ),
                Format::Databricks => format!(
                    r#"{{"version":"2.0","timestamp":{},"userIdentity":{{"email":"{who}@acme.example"}},"serviceName":"unityCatalog","actionName":"getTable","requestParams":{{"full_name_arg":"main.hr.t{}"}},"response":{{"statusCode":200}}}}"#,
                    1_773_828_000_000i64 + i as i64, i % 20
                ),
                Format::S3Access => format!(
                    r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be b{} [18/Mar/2026:10:{:02}:{:02} +0000] 192.0.2.{} arn:aws:sts::123456789012:assumed-role/Analyst/{who} 3E57427F3EXAMPLE REST.GET.OBJECT k/dt%3D2026-03-18/{i}.csv "GET /b/k/dt%3D2026-03-18/{i}.csv HTTP/1.1" 200 - 2662992 3462992 70 10 "-" "aws-cli/2.15.0" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader b.s3.us-east-1.amazonaws.com TLSv1.2 - -"#,
                    i % 20, (i / 60) % 60, i % 60, i % 250
                ),
                Format::GcsUsage => format!(
                    r#""{}","192.0.2.{}","1","","GET","/b{}/k/dt%3D2026-03-18/{i}.csv","200","0","2662992","23000","storage.googleapis.com","","curl/8.5.0","ADPycdt{i}","GET_Object","b{}","k/dt=2026-03-18/{i}.csv""#,
                    1_773_828_000_000_000i64 + i as i64 * 1000, i % 250, i % 20, i % 20
                ),
                other => unreachable!("{other:?}"),
            }
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("formats");
    group.throughput(Throughput::Elements(RECORDS as u64));
    for (name, format) in [
        ("pgaudit", Format::Pgaudit),
        ("cloudtrail", Format::Cloudtrail),
        ("gcp-audit", Format::GcpAudit),
        ("snowflake", Format::Snowflake),
        ("databricks", Format::Databricks),
        ("s3-access", Format::S3Access),
        ("gcs-usage", Format::GcsUsage),
    ] {
        let input = lines(format);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut reader = RecordReader::new(format, &VendorOptions::default()).unwrap();
                let mut out = Vec::new();
                let mut events = 0usize;
                for (i, line) in input.iter().enumerate() {
                    reader.line(i as u64 + 1, line.as_bytes(), &mut out);
                    for (_, result) in out.drain(..) {
                        events += result.expect("well-formed").len();
                    }
                }
                reader.flush(&mut out);
                events += out.len();
                black_box(events)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
