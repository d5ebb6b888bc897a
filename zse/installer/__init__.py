"""The installer terminal done the way GB smart metering does it (issue #20.3): commands the
back office signed, carried by the terminal over a tunnel, checked and run at most once by the
hub (:mod:`zse.installer.core`), and the terminal's bootstrap and service requests
(:mod:`zse.installer.service`)."""
