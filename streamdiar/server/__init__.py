"""The live server (protocol v1 over WebSocket), its client, and the browser page.

Modules: protocol (messages and validation), options (limits and access), server, session,
scheduler (batched rounds in the engine thread), client (asyncio client API), static/ (page).
"""
