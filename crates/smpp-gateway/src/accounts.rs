//! The customers' accounts as they are now: kept in the store, seeded from
//! the configuration at start (an account given there is added, or updated
//! when the store has it; accounts the store has and the configuration
//! does not are kept), changed through the admin API without a restart.
//! Binds and HTTP logins check against the current set.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use smpp_server::accounts::Accounts;
use smpp_server::config::{parse_cidr_list, Account};

use crate::node::lock;
use crate::store::StoredAccount;

/// The accounts and their checker, swapped whole on each change.
#[derive(Debug)]
pub(crate) struct AccountBook {
    list: Mutex<BTreeMap<String, Account>>,
    current: RwLock<Arc<Accounts>>,
}

impl AccountBook {
    /// From `accounts` (an error names one whose password does not parse).
    pub(crate) fn new(accounts: impl IntoIterator<Item = Account>) -> Result<AccountBook, String> {
        let list: BTreeMap<String, Account> = accounts
            .into_iter()
            .map(|a| (a.system_id.clone(), a))
            .collect();
        let current = Accounts::new(&list.values().cloned().collect::<Vec<_>>(), None)?;
        Ok(AccountBook {
            list: Mutex::new(list),
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// The checker of the accounts as they are now.
    pub(crate) fn current(&self) -> Arc<Accounts> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The accounts, by `system_id`.
    pub(crate) fn list(&self) -> Vec<Account> {
        lock(&self.list).values().cloned().collect()
    }

    /// Whether `system_id` is an account.
    pub(crate) fn contains(&self, system_id: &str) -> bool {
        lock(&self.list).contains_key(system_id)
    }

    fn rebuild(&self, list: &BTreeMap<String, Account>) -> Result<(), String> {
        let accounts = Accounts::new(&list.values().cloned().collect::<Vec<_>>(), None)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(accounts);
        Ok(())
    }

    /// Adds or replaces an account.
    pub(crate) fn put(&self, account: Account) -> Result<(), String> {
        let mut list = lock(&self.list);
        let mut next = list.clone();
        next.insert(account.system_id.clone(), account);
        self.rebuild(&next)?;
        *list = next;
        Ok(())
    }

    /// Removes an account; `false` when there was none.
    pub(crate) fn delete(&self, system_id: &str) -> bool {
        let mut list = lock(&self.list);
        if list.remove(system_id).is_none() {
            return false;
        }
        // The others parsed before: rebuilding without one cannot fail.
        let _ = self.rebuild(&list);
        true
    }
}

impl AccountBook {
    /// Makes the accounts those of the store (another node changed them):
    /// adds and replaces what differs, removes what is not there; the
    /// accounts removed.
    pub(crate) fn replace_from_store(&self, in_store: &[StoredAccount]) -> Vec<String> {
        let current = self.list();
        for s in in_store {
            if current
                .iter()
                .any(|a| a.system_id == s.system_id && stored(a) == *s)
            {
                continue;
            }
            match from_stored(s).and_then(|a| self.put(a)) {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(system_id = s.system_id, error = %e, "stored account unreadable: skipped")
                }
            }
        }
        let mut gone = Vec::new();
        for a in current {
            if !in_store.iter().any(|s| s.system_id == a.system_id) && self.delete(&a.system_id) {
                gone.push(a.system_id);
            }
        }
        gone
    }
}

/// The store's form of an account.
pub(crate) fn stored(account: &Account) -> StoredAccount {
    StoredAccount {
        system_id: account.system_id.clone(),
        password: account.password.clone(),
        allow: account.allow.iter().map(ToString::to_string).collect(),
        certificate_name: account.certificate_name.clone(),
    }
}

/// An account from the store's form.
pub(crate) fn from_stored(stored: &StoredAccount) -> Result<Account, String> {
    let mut account = Account::new(stored.system_id.clone(), stored.password.clone());
    if !stored.allow.is_empty() {
        account.allow = parse_cidr_list(&stored.allow.join(","))?;
    }
    account
        .certificate_name
        .clone_from(&stored.certificate_name);
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_change_whole_and_a_bad_one_changes_nothing() {
        let book = AccountBook::new(vec![Account::new("a", "pw")]).unwrap();
        assert!(book.current().contains("a"));
        book.put(Account::new("b", "pw2")).unwrap();
        assert!(book.current().contains("b"));
        assert!(book.put(Account::new("c", "$argon2id$nonsense")).is_err());
        assert!(!book.contains("c") && !book.current().contains("c"));
        assert!(book.delete("a"));
        assert!(!book.delete("a"));
        assert!(!book.current().contains("a"));
        let mut restricted = Account::new("r", "pw");
        restricted.allow = parse_cidr_list("10.0.0.0/8").unwrap();
        let back = from_stored(&stored(&restricted)).unwrap();
        assert_eq!(back.allow, restricted.allow);
    }
}
