//! Hand-made workbooks for the importer's caps and fuzz tests: a real workbook written by
//! rust_xlsxwriter whose sheet XML is replaced, so that a test can put any cell
//! reference, dimension or row count in it without a spreadsheet library's checks.

#![allow(dead_code)]

use std::io::{Cursor, Read, Write};

use rust_xlsxwriter::Workbook;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

pub const SHEET: &str = "xl/worksheets/sheet1.xml";

/// The form's header, as `<c>` elements of row 1.
pub fn header_cells() -> String {
    let headers = [
        "大类",
        "重点政策或工作",
        "项目名称",
        "项目方向",
        "申报（工作）主体",
        "经费预算",
        "项目绩效",
        "意见建议",
    ];
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| inline_cell(&format!("{}1", (b'A' + i as u8) as char), h))
        .collect()
}

pub fn inline_cell(reference: &str, text: &str) -> String {
    format!(r#"<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

/// A worksheet part with `rows` (already `<row>` elements) and an optional dimension.
pub fn sheet_xml(dimension: Option<&str>, rows: &str, extra: &str) -> String {
    let dim = dimension
        .map(|d| format!(r#"<dimension ref="{d}"/>"#))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{dim}<sheetData>{rows}</sheetData>{extra}</worksheet>"#
    )
}

/// A valid one-sheet workbook.
pub fn base_workbook() -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("需求征集表").unwrap();
    ws.write_string(0, 0, "大类").unwrap();
    wb.save_to_buffer().unwrap()
}

/// `base` with the part `name` replaced by `content` (deflated), or added when absent.
pub fn replace_part(base: &[u8], name: &str, content: &[u8]) -> Vec<u8> {
    let mut zip = ZipArchive::new(Cursor::new(base)).unwrap();
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut found = false;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let entry_name = entry.name().to_string();
        let mut bytes = Vec::new();
        if entry_name == name {
            found = true;
            bytes.extend_from_slice(content);
        } else {
            entry.read_to_end(&mut bytes).unwrap();
        }
        out.start_file(entry_name, options).unwrap();
        out.write_all(&bytes).unwrap();
    }
    if !found {
        out.start_file(name, options).unwrap();
        out.write_all(content).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A workbook whose first sheet is `xml`.
pub fn workbook_with_sheet(xml: &str) -> Vec<u8> {
    replace_part(&base_workbook(), SHEET, xml.as_bytes())
}

/// Rewrites the uncompressed size the central directory declares for `name`, as a zip
/// bomb that lies about its size does.
pub fn declare_size(zip: &mut [u8], name: &str, size: u32) {
    let sig = [0x50, 0x4b, 0x01, 0x02];
    let mut i = 0;
    while i + 46 <= zip.len() {
        if zip[i..i + 4] == sig {
            let name_len = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
            if zip.get(i + 46..i + 46 + name_len) == Some(name.as_bytes()) {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            }
        }
        i += 1;
    }
}

/// `base` with `count` more (tiny) parts.
pub fn with_extra_parts(base: &[u8], count: usize) -> Vec<u8> {
    let mut zip = ZipArchive::new(Cursor::new(base)).unwrap();
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..zip.len() {
        out.raw_copy_file(zip.by_index(i).unwrap()).unwrap();
    }
    for i in 0..count {
        out.start_file(format!("junk/{i}.bin"), SimpleFileOptions::default())
            .unwrap();
        out.write_all(b"x").unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A sheet whose only cells are A1 and XFD1048576 (a dense reader allocates the grid).
pub fn whole_grid_sheet() -> String {
    sheet_xml(
        Some("A1:XFD1048576"),
        &format!(
            r#"<row r="1">{}</row><row r="1048576">{}</row>"#,
            inline_cell("A1", "x"),
            inline_cell("XFD1048576", "y")
        ),
        "",
    )
}

/// The header, then rows 2.. with an unknown category and a budget that is not an
/// amount: two errors a row.
pub fn bad_rows(count: u32) -> String {
    let mut rows = format!(r#"<row r="1">{}</row>"#, header_cells());
    for r in 2..count + 2 {
        rows.push_str(&format!(
            r#"<row r="{r}">{}{}{}</row>"#,
            inline_cell(&format!("A{r}"), "九、不存在的大类"),
            inline_cell(&format!("C{r}"), "项目"),
            inline_cell(&format!("F{r}"), "待定"),
        ));
    }
    rows
}

/// `count` rows of one numeric cell each: 100 000 of them deflate to some hundred kilobytes.
pub fn numbered_rows(count: u32) -> String {
    (1..=count)
        .map(|r| format!(r#"<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>"#))
        .collect()
}
