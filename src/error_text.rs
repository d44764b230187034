//! Error messages as netlab prints them: each cause of the chain in lowercase, without
//! the "(os error N)" that std appends, joined by ": ".

/// "read lab.yaml: No such file or directory (os error 2)" -> "read lab.yaml: no such
/// file or directory".
pub fn error_text(err: &anyhow::Error) -> String {
    err.chain().map(|cause| tidy(&cause.to_string())).collect::<Vec<_>>().join(": ")
}

/// The same for a library's typed error: it and each of its sources.
pub fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(err), |e| e.source())
        .map(|cause| tidy(&cause.to_string()))
        .collect::<Vec<_>>()
        .join(": ")
}

fn tidy(text: &str) -> String {
    let text = match text.find(" (os error ") {
        Some(cut) if text.ends_with(')') => &text[..cut],
        _ => text,
    };
    // Lowercase a leading capital unless it starts an acronym or a name like "RED".
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(text[first.len_utf8()..].chars()).collect()
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{chain_text, error_text};

    #[test]
    fn causes_are_lowercase_without_os_error_numbers() {
        let io = std::io::Error::from_raw_os_error(2);
        let err = anyhow::Error::new(io).context("read lab.yaml");
        assert_eq!(error_text(&err), "read lab.yaml: no such file or directory");
        let err = anyhow::anyhow!("RED is busy");
        assert_eq!(error_text(&err), "RED is busy");
    }

    #[test]
    fn a_typed_error_reads_like_its_anyhow_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("read lab.yaml")]
        struct Read(#[source] std::io::Error);
        let err = Read(std::io::Error::from_raw_os_error(2));
        assert_eq!(chain_text(&err), "read lab.yaml: no such file or directory");
    }
}
