//! The storage contract suite, the one the database adapters pass, run against the in-memory
//! store: it keeps the ports' promises as they do.

use baton_domain::testing::InMemoryStore;

baton_domain::contract_suite!(memory => async { InMemoryStore::new() });
