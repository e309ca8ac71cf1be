// Package workspaces holds msp's workspace tree as manifests, one folder per workspace
// (the folder path is the workspace path: root/providers/postgres is
// root:providers:postgres). The bootstrap applies a folder's objects in its workspace;
// child workspaces are the Workspace objects in the parent's folder and are walked
// depth-first in the order they are declared, so that what a later workspace needs
// (an APIExport, a WorkspaceType) exists before it is created.
package workspaces

import "embed"

// Tree is the workspace tree, rooted at "root".
//
//go:embed root
var Tree embed.FS
