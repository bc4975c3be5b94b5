//! A tiny XML tree for reading S3 response documents in assertions.

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// One XML element: local name, attributes, text content and child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (namespace prefix removed).
    pub name: String,
    /// Attributes by their full (qualified) name, e.g. `xsi:type`.
    pub attrs: BTreeMap<String, String>,
    /// Concatenated, unescaped text directly inside this element.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.rsplit_once(':') {
        Some((_, l)) => l.to_owned(),
        None => s.into_owned(),
    }
}

fn start(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let mut el = Element {
        name: local(e.name().as_ref()),
        ..Element::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
        el.attrs.insert(key, value);
    }
    Ok(el)
}

impl Element {
    /// Parses a document and returns its root element.
    pub fn parse(doc: &str) -> Result<Element, String> {
        let mut reader = Reader::from_str(doc);
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let ev = reader.read_event().map_err(|e| e.to_string())?;
            match ev {
                Event::Start(e) => stack.push(start(&e)?),
                Event::Empty(e) => {
                    let el = start(&e)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::End(_) => {
                    let el = stack.pop().ok_or("unbalanced end tag")?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::Text(t) => {
                    if let Some(cur) = stack.last_mut() {
                        cur.text.push_str(&t.decode().map_err(|e| e.to_string())?);
                    }
                }
                Event::CData(t) => {
                    if let Some(cur) = stack.last_mut() {
                        cur.text.push_str(&t.decode().map_err(|e| e.to_string())?);
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(cur) = stack.last_mut() {
                        if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
                            cur.text.push(c);
                        } else {
                            let name = r.decode().map_err(|e| e.to_string())?;
                            let c = match name.as_ref() {
                                "amp" => '&',
                                "lt" => '<',
                                "gt" => '>',
                                "quot" => '"',
                                "apos" => '\'',
                                other => return Err(format!("unknown entity &{other};")),
                            };
                            cur.text.push(c);
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !stack.is_empty() {
            return Err("unclosed element".into());
        }
        root.ok_or_else(|| "empty document".into())
    }

    /// The first direct child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All direct children with this local name.
    pub fn all(&self, name: &str) -> Vec<&Element> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    /// The text of the first direct child with this name.
    pub fn text_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.clone())
    }

    /// Follows a `/`-separated path of child names from this element.
    pub fn path(&self, path: &str) -> Option<&Element> {
        let mut cur = self;
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            cur = cur.child(seg)?;
        }
        Some(cur)
    }

    /// The text at a `/`-separated path.
    pub fn text_at(&self, path: &str) -> Option<String> {
        self.path(path).map(|e| e.text.clone())
    }

    /// The texts of every `child_name` child of every `name` child, e.g.
    /// `texts("Contents", "Key")`.
    pub fn texts(&self, name: &str, child_name: &str) -> Vec<String> {
        self.all(name)
            .into_iter()
            .filter_map(|e| e.text_of(child_name))
            .collect()
    }
}
