#!/usr/bin/env -S node --max-semi-space-size=24
'use strict';
require('../dist/src/cli/main.js').main(process.argv);
