"""Remote SMB servers: over SSH (agentless) and through MS-SRVS (srvsvc)."""
