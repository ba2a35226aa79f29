//! Checks every solver makes on the answer it is handed.

use renewd_acme::ChallengeAnswer;
use renewd_core::ChallengeType;

use crate::error::Error;

/// `answer` is for `solver`'s challenge type.
pub(crate) fn expect_type(answer: &ChallengeAnswer, solver: ChallengeType) -> Result<(), Error> {
    if answer.challenge_type == solver {
        Ok(())
    } else {
        Err(Error::WrongChallenge {
            solver,
            given: answer.challenge_type,
            identifier: answer.identifier.clone(),
        })
    }
}

/// The token is base64url (RFC 8555 §8.1: "MUST NOT contain any characters outside the
/// base64url alphabet"), so it is safe as a file name and a URL path segment.
pub(crate) fn check_token(token: &str) -> Result<(), Error> {
    let ok = !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::BadToken {
            token: token.chars().take(300).collect(),
        })
    }
}

/// The name an identifier's hooks see: a wildcard keeps its `*.`.
pub(crate) fn domain_of(answer: &ChallengeAnswer) -> String {
    if answer.wildcard {
        format!("*.{}", answer.identifier)
    } else {
        answer.identifier.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_base64url_only() {
        assert!(check_token("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA").is_ok());
        for bad in ["", "../../etc/passwd", "a/b", "a.b", "a b", "ä", "a\0"] {
            assert!(
                matches!(check_token(bad), Err(Error::BadToken { .. })),
                "{bad:?}"
            );
        }
        assert!(check_token(&"a".repeat(257)).is_err());
    }
}
