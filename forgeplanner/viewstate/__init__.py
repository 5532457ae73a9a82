"""What each desktop view shows, computed without Qt.

A view's state object holds its inputs (plain frozen values), turns them into what the page
draws (numbers, texts, rows, the vocabulary the whole app uses) by calling the engine and the
services, and says what changes when an input changes. `ui/` only binds widgets to these
objects: it reads inputs from widgets, asks the state for the outcome, and lays it out. So the
numbers on screen are testable without a display (tests/viewstate run with Qt absent), and the
CLI and the app cannot drift apart.
"""
