from srgan.cli import main

raise SystemExit(main())
