#!/usr/bin/env python3
"""Circles of imports between the top-level modules of each crate.

    scripts/import-cycles.py crates/*/src src

For each source folder: the strongly connected groups of its top-level
modules, where module A depends on B when A names `crate::B` (test modules
excluded). "no cycles" is the goal; a group lists modules that import each
other directly or through others.
"""
import os,re,sys,collections
def modules(src):
    mods={}
    for root,_,files in os.walk(src):
        for f in files:
            if not f.endswith('.rs'): continue
            p=os.path.join(root,f)
            rel=os.path.relpath(p,src)[:-3]
            name=rel.replace('/','::')
            if name in('lib','main'): name='crate'
            name=re.sub(r'::mod$','',name)
            mods[name]=open(p).read()
    return mods
def deps(mods):
    g=collections.defaultdict(set)
    for m,text in mods.items():
        text=re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*','',text,flags=re.S)
        for mm in re.finditer(r'crate::([a-z_]+)(?:::([a-z_]+))?',text):
            a=mm.group(1); b=mm.group(2)
            target=a
            if b and f"{a}::{b}" in mods: target=f"{a}::{b}"
            if target in mods and target!=m and target!='crate':
                top_m=m.split('::')[0]; top_t=target.split('::')[0]
                if top_m!=top_t: g[top_m].add(top_t)
    return g
def cycles(g):
    idx={};low={};st=[];on=set();res=[];i=[0]
    def sc(v):
        idx[v]=low[v]=i[0];i[0]+=1;st.append(v);on.add(v)
        for w in g.get(v,()):
            if w not in idx: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],idx[w])
        if low[v]==idx[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v:break
            if len(comp)>1: res.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in list(g):
        if v not in idx: sc(v)
    return res
for src in sys.argv[1:]:
    c=cycles(deps(modules(src)))
    print(src, c if c else "no cycles")
