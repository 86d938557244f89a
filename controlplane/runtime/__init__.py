"""Runtimes that execute cpl workflow specs on engines that run code, not documents."""
