//! Rendering: Contiv-style plain tables (a header line, a line of dashes, two spaces between
//! columns, no borders), pretty JSON, and field accessors over the wire objects.

use std::io::Write;

use comfy_table::{CellAlignment, ContentArrangement, ContentLineStyle, Table, TableStyle};
use serde_json::Value;

use crate::error::Result;

/// Borderless style: columns separated by the junction plus the right padding (two spaces).
const CONTIV_STYLE: TableStyle = TableStyle::new()
    .header_lines(ContentLineStyle::none().junction(' '))
    .content_lines(ContentLineStyle::none().junction(' '));

/// Renders a table the way Contiv's netctl did with tabwriter: headers, a row of dashes as long as
/// each header, then the rows, columns left aligned and two spaces apart, no trailing blanks.
pub fn render_table<S: AsRef<str>>(headers: &[&str], rows: &[Vec<S>]) -> String {
    let mut table = Table::new();
    table
        .load_style(CONTIV_STYLE)
        .force_no_tty()
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    table.add_row(
        headers
            .iter()
            .map(|h| "-".repeat(h.chars().count()))
            .collect::<Vec<_>>(),
    );
    for row in rows {
        table.add_row(
            row.iter()
                .map(|c| c.as_ref().to_string())
                .collect::<Vec<_>>(),
        );
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 1));
        column.set_cell_alignment(CellAlignment::Left);
    }
    let mut text = table.trim_fmt();
    text.push('\n');
    text
}

/// Writes a table to `out`.
pub fn print_table<S: AsRef<str>>(
    out: &mut dyn Write,
    headers: &[&str],
    rows: &[Vec<S>],
) -> Result<()> {
    out.write_all(render_table(headers, rows).as_bytes())?;
    Ok(())
}

/// Writes a JSON value pretty-printed with two-space indentation, as received (nothing dropped).
pub fn print_json(out: &mut dyn Write, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::from)?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// Writes one name per line (`-q`).
pub fn print_names(out: &mut dyn Write, objects: &[Value], field: &str) -> Result<()> {
    for obj in objects {
        writeln!(out, "{}", str_field(obj, field))?;
    }
    Ok(())
}

/// A string field of an object, `""` when absent (a number is printed as is).
pub fn str_field(obj: &Value, field: &str) -> String {
    match obj.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Contiv's "info" output: one `Label: value` line per (label, field), for each object.
pub fn label_lines(objs: &[Value], lines: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for obj in objs {
        for (label, field) in lines {
            text.push_str(&format!("{label}: {}\n", str_field(obj, field)));
        }
    }
    text
}

/// An integer field of an object, `"0"` when absent (Go printed a zero value).
pub fn int_field(obj: &Value, field: &str) -> String {
    match obj.get(field) {
        Some(Value::Null) | None => "0".to_string(),
        Some(Value::String(s)) if s.is_empty() => "0".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A string-array field of an object, empty when absent.
pub fn list_field(obj: &Value, field: &str) -> Vec<String> {
    match obj.get(field) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A string list the way Go's `%v` printed a `[]string`: `[a b c]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_is_plain_and_aligned() {
        let rows = vec![
            vec![
                "default".to_string(),
                "contiv-net".to_string(),
                "data".to_string(),
            ],
            vec!["t1".to_string(), "n".to_string(), String::new()],
        ];
        let text = render_table(&["Tenant", "Network", "Nw Type"], &rows);
        let expected = "\
Tenant   Network     Nw Type
------   -------     -------
default  contiv-net  data
t1       n
";
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_table_has_headers_only() {
        let rows: Vec<Vec<String>> = Vec::new();
        assert_eq!(render_table(&["Name"], &rows), "Name\n----\n");
    }

    #[test]
    fn field_accessors() {
        let obj = json!({"a": "x", "n": 5, "l": ["p", "q"], "z": null});
        assert_eq!(str_field(&obj, "a"), "x");
        assert_eq!(str_field(&obj, "n"), "5");
        assert_eq!(str_field(&obj, "missing"), "");
        assert_eq!(str_field(&obj, "z"), "");
        assert_eq!(int_field(&obj, "n"), "5");
        assert_eq!(int_field(&obj, "missing"), "0");
        assert_eq!(list_field(&obj, "l"), vec!["p", "q"]);
        assert!(list_field(&obj, "a").is_empty());
        assert_eq!(go_list(&list_field(&obj, "l")), "[p q]");
        assert_eq!(go_list(&[]), "[]");
    }

    #[test]
    fn json_is_pretty() {
        let mut buf = Vec::new();
        assert!(print_json(&mut buf, &json!([{"tenantName": "t"}])).is_ok());
        assert_eq!(
            String::from_utf8_lossy(&buf),
            "[\n  {\n    \"tenantName\": \"t\"\n  }\n]\n"
        );
    }
}
