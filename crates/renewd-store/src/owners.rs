//! User and group names to numeric ids, read from `/etc/passwd` and `/etc/group` (the
//! workspace forbids `unsafe`, so libc's getpwnam_r is out of reach). Names served only by
//! NSS modules (LDAP, systemd's DynamicUser) are not found; numeric ids always work.

use std::fs;

use crate::error::StoreError;

/// A user name (or numeric uid) to a uid.
pub(crate) fn resolve_user(name: &str) -> Result<u32, StoreError> {
    resolve(name, "user", "/etc/passwd")
}

/// A group name (or numeric gid) to a gid.
pub(crate) fn resolve_group(name: &str) -> Result<u32, StoreError> {
    resolve(name, "group", "/etc/group")
}

fn resolve(name: &str, kind: &'static str, file: &'static str) -> Result<u32, StoreError> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let unknown = || StoreError::UnknownOwner {
        kind,
        name: name.to_string(),
        source_file: file,
    };
    let text = fs::read_to_string(file).map_err(|e| StoreError::io("reading", file, e))?;
    lookup(&text, name).ok_or_else(unknown)
}

/// The id (third field) of the line whose first field is `name`, in passwd/group format.
fn lookup(text: &str, name: &str) -> Option<u32> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next()? == name).then_some(())?;
            fields.nth(1)?.trim().parse().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_names() {
        let passwd = "# comment\nroot:x:0:0:root:/root:/bin/bash\n\
                      www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nbroken\nodd:x:nan:1::/:/\n";
        assert_eq!(lookup(passwd, "root"), Some(0));
        assert_eq!(lookup(passwd, "www-data"), Some(33));
        assert_eq!(lookup(passwd, "www"), None);
        assert_eq!(lookup(passwd, "broken"), None);
        assert_eq!(lookup(passwd, "odd"), None);
        assert_eq!(lookup("ssl-cert:x:108:\n", "ssl-cert"), Some(108));
    }

    #[test]
    fn resolves_on_this_system() {
        assert_eq!(resolve_user("root").unwrap(), 0);
        assert_eq!(resolve_group("0").unwrap(), 0);
        let err = resolve_user("no-such-user-renewd-test").unwrap_err();
        assert!(
            err.to_string().contains("no-such-user-renewd-test"),
            "{err}"
        );
    }
}
