"""SIPp XML scenarios in sipha's load engine: loader, interpreter, injection files, runner."""
