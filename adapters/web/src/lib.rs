//! heartbeat-core in the browser.
