// Test-only (tests/vscode/record_schemas.py): VS Code serves the schemas it checks tasks.json
// and launch.json against as documents (vscode://schemas/…, what its JSON language features
// read); this writes them out as VS Code built them, with every debugger installed.
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');

async function activate() {
  const out = process.env.DEVKIT_SCHEMA_OUT;
  if (!out) { return; }
  for (const name of ['tasks', 'launch']) {
    const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(`vscode://schemas/${name}`));
    fs.writeFileSync(path.join(out, `${name}.schema.json`), document.getText());
  }
  fs.writeFileSync(path.join(out, 'version.txt'), `${vscode.version}\n`);
}

module.exports = { activate };
